"""``airflow.sensors.date_time``: wait until a (templated) date-time."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.errors import TaskExecutionError

from ._time import TargetTimeSensor


class DateTimeSensor(TargetTimeSensor):
    template_fields = ("target_time",)

    def __init__(self, *, target_time: str | dt.datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time.isoformat() if isinstance(target_time, dt.datetime) else target_time

    def target(self, context: TaskContext) -> dt.datetime:
        try:
            value = dt.datetime.fromisoformat(str(self.target_time).strip())
        except ValueError:
            raise TaskExecutionError(
                f"task {self.task_id!r}: target_time {self.target_time!r} is not a date-time"
            ) from None
        return value if value.tzinfo else value.replace(tzinfo=getattr(self.flow, "tz", None) or dt.UTC)


class DateTimeSensorAsync(DateTimeSensor):
    """Deferred: frees its worker slot and is queued again at the target time."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["deferrable"] = True
        super().__init__(**kwargs)


__all__ = ["DateTimeSensor", "DateTimeSensorAsync"]
