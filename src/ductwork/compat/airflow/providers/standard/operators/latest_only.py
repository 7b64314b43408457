"""``airflow.providers.standard.operators.latest_only``: ``airflow.operators.latest_only``'s shims."""

from __future__ import annotations

from ....operators.latest_only import LatestOnlyOperator

__all__ = ["LatestOnlyOperator"]
