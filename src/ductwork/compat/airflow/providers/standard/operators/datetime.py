"""``airflow.providers.standard.operators.datetime``: ``airflow.operators.datetime``'s shims."""

from __future__ import annotations

from ....operators.datetime import BranchDateTimeOperator

__all__ = ["BranchDateTimeOperator"]
