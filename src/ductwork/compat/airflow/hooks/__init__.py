"""``airflow.hooks``: the base class of hooks."""
