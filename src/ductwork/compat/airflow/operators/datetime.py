"""``airflow.operators.datetime.BranchDateTimeOperator``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.sensors import context_clock

from ..operators.empty import EmptyOperator
from ..operators.python import follow_branches


class BranchDateTimeOperator(EmptyOperator):
    """Follows ``follow_task_ids_if_true`` when now (or the logical date) is within
    ``[target_lower, target_upper]``; times alone are compared on that day."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        target_lower: dt.datetime | dt.time | None,
        target_upper: dt.datetime | dt.time | None,
        use_task_logical_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if target_lower is None and target_upper is None:
            from ..exceptions import AirflowException

            raise AirflowException("Both target_upper and target_lower are None. At least one must be defined.")
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.target_lower = target_lower
        self.target_upper = target_upper
        self.use_task_logical_date = use_task_logical_date

    def execute(self, context: TaskContext) -> Any:
        now = context["logical_date"] if self.use_task_logical_date else context_clock(context).now()
        tz = getattr(self.flow, "tz", None) or dt.UTC
        now = now.astimezone(tz)
        lower, upper = (_on_day(t, now, tz) for t in (self.target_lower, self.target_upper))
        both_times = isinstance(self.target_lower, dt.time) and isinstance(self.target_upper, dt.time)
        if both_times and lower and upper and upper <= lower:  # a window across midnight
            upper += dt.timedelta(days=1)
        inside = (lower is None or lower <= now) and (upper is None or now <= upper)
        chosen = self.follow_task_ids_if_true if inside else self.follow_task_ids_if_false
        follow_branches(self, chosen, context)
        return chosen


def _on_day(target: dt.datetime | dt.time | None, now: dt.datetime, tz: dt.tzinfo) -> dt.datetime | None:
    if target is None:
        return None
    if isinstance(target, dt.time):
        return dt.datetime.combine(now.date(), target, tzinfo=target.tzinfo or tz)
    return target if target.tzinfo else target.replace(tzinfo=tz)


__all__ = ["BranchDateTimeOperator"]
