"""``airflow.timetables.trigger.CronTriggerTimetable``: a cron schedule.

Ductwork's cron schedules are data intervals: a run fires at each cron time, and its logical
date is the start of the interval that just ended, where ``CronTriggerTimetable`` makes the
logical date the fire time itself (the migration guide lists this).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ductwork.compat.features import refuse

from .base import Timetable
from .interval import CRON_PRESETS, _zone_name


class CronTriggerTimetable(Timetable):
    def __init__(
        self, cron: str, *, timezone: Any = "UTC", interval: Any = dt.timedelta(), run_immediately: Any = False
    ) -> None:
        if run_immediately:
            refuse("CronTriggerTimetable(run_immediately=...)", "a first run before the first cron time")
        self.cron = cron
        self.timezone = timezone
        self._tz = _zone_name(timezone)
        self._expression = CRON_PRESETS.get(cron, cron)

    @property
    def summary(self) -> str:
        return self._expression

    def serialize(self) -> dict[str, Any]:
        return {"expression": self._expression, "timezone": self._tz}

    def ductwork_schedule(self) -> str:
        return self.cron


__all__ = ["CronTriggerTimetable"]
