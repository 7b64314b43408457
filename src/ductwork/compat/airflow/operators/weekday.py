"""``airflow.operators.weekday.BranchDayOfWeekOperator``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.sensors import context_clock

from ..operators.empty import EmptyOperator
from ..operators.python import follow_branches
from ..utils.weekday import WeekDay


class BranchDayOfWeekOperator(EmptyOperator):
    """Follows ``follow_task_ids_if_true`` on the given week day(s), else the other branch; the
    day is today's (in the DAG's timezone) or, with ``use_task_logical_date``, the run's."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        week_day: str | WeekDay | Iterable[str | WeekDay],
        use_task_logical_date: bool = False,
        use_task_execution_day: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.follow_task_ids_if_true = follow_task_ids_if_true
        self.follow_task_ids_if_false = follow_task_ids_if_false
        self.week_day = week_day
        self._week_day_num = WeekDay.validate_week_day(week_day)
        self.use_task_logical_date = use_task_logical_date or use_task_execution_day

    def execute(self, context: TaskContext) -> Any:
        when = context["logical_date"] if self.use_task_logical_date else context_clock(context).now()
        tz = getattr(self.flow, "tz", None)
        day = (when.astimezone(tz) if tz is not None else when).isoweekday()
        chosen = self.follow_task_ids_if_true if day in self._week_day_num else self.follow_task_ids_if_false
        follow_branches(self, chosen, context)
        return chosen


__all__ = ["BranchDayOfWeekOperator"]
