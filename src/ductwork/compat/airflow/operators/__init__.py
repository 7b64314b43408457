"""``airflow.operators``: the standard operators."""
