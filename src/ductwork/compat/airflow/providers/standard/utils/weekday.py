"""``airflow.providers.standard.utils.weekday``: ``airflow.utils.weekday``'s shims."""

from __future__ import annotations

from ....utils.weekday import WeekDay

__all__ = ["WeekDay"]
