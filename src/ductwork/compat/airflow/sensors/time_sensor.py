"""``airflow.sensors.time_sensor``: wait until a time of day (in the DAG's timezone)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ductwork.core.context import TaskContext

from ._time import TargetTimeSensor


class TimeSensor(TargetTimeSensor):
    def __init__(self, *, target_time: dt.time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time

    def target(self, context: TaskContext) -> dt.datetime:
        tz = getattr(self.flow, "tz", None) or dt.UTC
        from ductwork.core.sensors import context_clock

        today = context_clock(context).now().astimezone(tz).date()
        return dt.datetime.combine(today, self.target_time, tzinfo=self.target_time.tzinfo or tz)


class TimeSensorAsync(TimeSensor):
    """Deferred: frees its worker slot and is queued again at the target time."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["deferrable"] = True
        super().__init__(**kwargs)


__all__ = ["TimeSensor", "TimeSensorAsync"]
