"""``airflow.sensors.time_delta``: wait until ``delta`` after the data interval's end."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ductwork.core.context import TaskContext

from ._time import TargetTimeSensor


class TimeDeltaSensor(TargetTimeSensor):
    def __init__(self, *, delta: dt.timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delta = delta

    def target(self, context: TaskContext) -> dt.datetime:
        return context["data_interval_end"] + self.delta


class TimeDeltaSensorAsync(TimeDeltaSensor):
    """Deferred: frees its worker slot and is queued again at the target time."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs["deferrable"] = True
        super().__init__(**kwargs)


class WaitSensor(TargetTimeSensor):
    """Waits ``time_to_wait`` from the moment it first runs."""

    def __init__(self, *, time_to_wait: dt.timedelta | int, deferrable: bool = False, **kwargs: Any) -> None:
        super().__init__(deferrable=deferrable, **kwargs)
        self.time_to_wait = (
            time_to_wait if isinstance(time_to_wait, dt.timedelta) else dt.timedelta(minutes=time_to_wait)
        )

    def target(self, context: TaskContext) -> dt.datetime:
        started = context["ti"].results.pull(context["ti"].run.key, f"__wait__.{self.task_id}", "start")
        from ductwork.core.results import MISSING
        from ductwork.core.sensors import context_clock

        if started is MISSING:
            started = context_clock(context).now().isoformat()
            context["ti"].results.push(context["ti"].run.key, f"__wait__.{self.task_id}", "start", started)
        return dt.datetime.fromisoformat(started) + self.time_to_wait


__all__ = ["TimeDeltaSensor", "TimeDeltaSensorAsync", "WaitSensor"]
