"""``airflow.timetables.trigger.CronTriggerTimetable``: a cron schedule.

Ductwork's cron schedules are data intervals: a run fires at each cron time, and its logical
date is the start of the interval that just ended, where ``CronTriggerTimetable`` makes the
logical date the fire time itself (the migration guide lists this).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ductwork.compat.features import refuse


class CronTriggerTimetable:
    def __init__(
        self, cron: str, *, timezone: Any = "UTC", interval: Any = dt.timedelta(), run_immediately: Any = False
    ) -> None:
        if run_immediately:
            refuse("CronTriggerTimetable(run_immediately=...)", "a first run before the first cron time")
        self.cron = cron
        self.timezone = timezone

    def ductwork_schedule(self) -> str:
        return self.cron


__all__ = ["CronTriggerTimetable"]
