"""``airflow.operators.python_operator``: Airflow 1.10's module name, kept by Airflow 2 (deprecated)."""

from __future__ import annotations

from .python import BranchPythonOperator, PythonOperator, ShortCircuitOperator

__all__ = ["BranchPythonOperator", "PythonOperator", "ShortCircuitOperator"]
