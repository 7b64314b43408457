"""``airflow.providers.standard.sensors``: the same shims as ``airflow.sensors``."""
