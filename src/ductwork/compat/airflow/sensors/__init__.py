"""``airflow.sensors``."""
