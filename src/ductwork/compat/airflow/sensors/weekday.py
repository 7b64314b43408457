"""``airflow.sensors.weekday.DayOfWeekSensor``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.sensors import context_clock

from ..utils.weekday import WeekDay
from .base import BaseSensorOperator


class DayOfWeekSensor(BaseSensorOperator):
    def __init__(
        self,
        *,
        week_day: str | WeekDay | Iterable[str | WeekDay],
        use_task_logical_date: bool = False,
        use_task_execution_day: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.week_day = week_day
        self._week_day_num = WeekDay.validate_week_day(week_day)
        self.use_task_logical_date = use_task_logical_date or use_task_execution_day

    def poke(self, context: TaskContext) -> bool:
        when = context["logical_date"] if self.use_task_logical_date else context_clock(context).now()
        tz = getattr(self.flow, "tz", None)
        return (when.astimezone(tz) if tz is not None else when).isoweekday() in self._week_day_num


__all__ = ["DayOfWeekSensor"]
