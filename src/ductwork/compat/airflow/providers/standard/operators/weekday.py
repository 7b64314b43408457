"""``airflow.providers.standard.operators.weekday``: ``airflow.operators.weekday``'s shims."""

from __future__ import annotations

from ....operators.weekday import BranchDayOfWeekOperator

__all__ = ["BranchDayOfWeekOperator"]
