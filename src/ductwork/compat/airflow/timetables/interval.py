"""``airflow.timetables.interval``: cron and fixed-delta data intervals, which is what Ductwork's
cron strings and timedeltas already are."""

from __future__ import annotations

import datetime as dt
from typing import Any


class CronDataIntervalTimetable:
    def __init__(self, cron: str, timezone: Any = "UTC") -> None:
        self.cron = cron
        self.timezone = timezone

    def ductwork_schedule(self) -> str:
        return self.cron


class DeltaDataIntervalTimetable:
    def __init__(self, delta: dt.timedelta) -> None:
        self.delta = delta

    def ductwork_schedule(self) -> dt.timedelta:
        return self.delta


__all__ = ["CronDataIntervalTimetable", "DeltaDataIntervalTimetable"]
