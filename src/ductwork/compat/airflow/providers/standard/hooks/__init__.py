"""``airflow.providers.standard.hooks``: Airflow 3's home of the standard hooks."""
