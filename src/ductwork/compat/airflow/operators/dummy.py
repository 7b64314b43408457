"""``airflow.operators.dummy`` (the old name of ``EmptyOperator``)."""

from __future__ import annotations

from .empty import EmptyOperator

DummyOperator = EmptyOperator

__all__ = ["DummyOperator", "EmptyOperator"]
