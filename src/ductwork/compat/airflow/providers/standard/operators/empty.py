"""``airflow.providers.standard.operators.empty``: ``airflow.operators.empty``'s shims."""

from __future__ import annotations

from ....operators.empty import EmptyOperator

__all__ = ["EmptyOperator"]
