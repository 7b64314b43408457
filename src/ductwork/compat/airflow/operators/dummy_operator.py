"""``airflow.operators.dummy_operator``: Airflow 1.10's module name, kept by Airflow 2 (deprecated)."""

from __future__ import annotations

from .empty import EmptyOperator

DummyOperator = EmptyOperator

__all__ = ["DummyOperator"]
