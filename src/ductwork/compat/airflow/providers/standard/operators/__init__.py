"""``airflow.providers.standard.operators``: the same shims as ``airflow.operators``."""
