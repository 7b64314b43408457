"""``airflow.timetables.interval``: cron and fixed-delta data intervals, which is what Ductwork's
cron strings and timedeltas already are."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .base import Timetable

CRON_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
}


def _zone_name(timezone: Any) -> str:
    return str(getattr(timezone, "name", None) or timezone or "UTC")


class CronDataIntervalTimetable(Timetable):
    """Runs at each cron time; each run covers the interval since the one before. ``summary``
    is the cron expression (a preset spelled out), as Airflow's."""

    def __init__(self, cron: str, timezone: Any = "UTC") -> None:
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


class DeltaDataIntervalTimetable(Timetable):
    """Runs every ``delta``; ``summary`` is the delta as Python writes it (``1 day, 0:00:00``)."""

    def __init__(self, delta: dt.timedelta) -> None:
        self.delta = delta
        self._delta = delta

    @property
    def summary(self) -> str:
        return str(self._delta)

    def serialize(self) -> dict[str, Any]:
        return {"delta": self._delta.total_seconds()}

    def ductwork_schedule(self) -> dt.timedelta:
        return self.delta


__all__ = ["CronDataIntervalTimetable", "DeltaDataIntervalTimetable"]
