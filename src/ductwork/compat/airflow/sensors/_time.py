"""Shared by the time sensors: wake up exactly at the target instead of polling."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.sensors import context_clock

from .base import BaseSensorOperator


class TargetTimeSensor(BaseSensorOperator):
    """A sensor whose condition is "the clock reached ``target(context)``"; deferred (or in
    reschedule mode) it is queued again at that instant, so one wait costs one reschedule."""

    def target(self, context: TaskContext) -> dt.datetime:
        raise NotImplementedError

    def poke(self, context: TaskContext) -> bool:
        self._target = self.target(context)
        now = context_clock(context).now()
        context["log"].info("waiting until %s", self._target.isoformat())
        return bool(now >= self._target)

    def next_interval(self, pokes: int) -> float:
        target: Any = getattr(self, "_target", None)
        if target is None or self.mode != "reschedule":
            return super().next_interval(pokes)
        remaining = (target - dt.datetime.now(dt.UTC)).total_seconds()
        return max(remaining, 0.5) if not self.exponential_backoff else super().next_interval(pokes)
