"""``airflow.utils``."""
