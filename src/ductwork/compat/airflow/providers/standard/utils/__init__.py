"""``airflow.providers.standard.utils``: the same shims as ``airflow.utils``."""
