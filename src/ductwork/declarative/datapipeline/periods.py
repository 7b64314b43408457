"""AWS Data Pipeline periods (``"15 minutes"``, ``"1 Days"``) and how a schedule becomes Ductwork's.

A period is ``N unit`` with unit years, months, weeks, days, hours or minutes (singular or
plural, any case; seconds are accepted too, for tests and short timeouts). Weeks and smaller
become fixed intervals; months and years become cron expressions anchored at the start
date-time, because their length varies.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

_PERIOD = re.compile(r"^\s*(\d+)\s*(year|month|week|day|hour|minute|second)s?\s*$", re.IGNORECASE)
_SECONDS = {"week": 7 * 86400, "day": 86400, "hour": 3600, "minute": 60, "second": 1}


@dataclass(frozen=True)
class Period:
    count: int
    unit: str
    """Singular, lower case: year, month, week, day, hour, minute or second."""

    @property
    def fixed(self) -> bool:
        return self.unit not in ("year", "month")

    def seconds(self) -> float:
        if not self.fixed:
            raise ValueError(f"'{self}' has no fixed length")
        return float(self.count * _SECONDS[self.unit])

    def add(self, when: dt.datetime, times: int = 1) -> dt.datetime:
        from ductwork.declarative.datapipeline.jodatime import add

        if self.fixed:
            return when + dt.timedelta(seconds=self.seconds() * times)
        return add(when, f"{self.unit}s", self.count * times)

    def duration_text(self) -> str:
        """Ductwork's duration text for a fixed period (``15m``, ``2d``)."""
        seconds = int(self.seconds())
        for size, suffix in ((86400, "d"), (3600, "h"), (60, "m")):
            if seconds % size == 0:
                return f"{seconds // size}{suffix}"
        return f"{seconds}s"

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'s' if self.count != 1 else ''}"


def parse_period(text: str) -> Period:
    """A period from ``"N units"``; raises ``ValueError`` with the expected form."""
    match = _PERIOD.match(text)
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(
            f"{text!r} is not a period: expected 'N years|months|weeks|days|hours|minutes' with N > 0, e.g. '1 days'"
        )
    return Period(int(match.group(1)), match.group(2).lower())


def schedule_text(period: Period, start: dt.datetime | None) -> str:
    """The Ductwork schedule (duration or cron text) that fires every ``period`` from ``start``.

    Months and years need a start to anchor the day and time; a count of months must divide a
    year (1, 2, 3, 4, 6 or 12) so that the same months repeat every year.
    """
    if period.fixed:
        return period.duration_text()
    if start is None:
        raise ValueError(f"a period of '{period}' needs a startDateTime to anchor its day and time")
    if start.day > 28:
        raise ValueError(f"a period of '{period}' cannot start on day {start.day}: not every month has it")
    months = period.count * (12 if period.unit == "year" else 1)
    if 12 % months and months % 12:
        raise ValueError(f"a period of '{period}' does not repeat the same months every year")
    if months % 12 == 0 and months != 12:
        raise ValueError(f"a period of '{period}' is not supported: use at most 1 year")
    return _month_cron(months, start)


_PRESETS = {"0 0 1 * *": "@monthly", "0 0 1 */3 *": "@quarterly", "0 0 1 1 *": "@yearly"}


def _month_cron(months: int, start: dt.datetime) -> str:
    """The shortest cron text for every ``months`` months from ``start``: a preset when one fits
    (``1 month`` from the 1st at midnight is ``@monthly``), ``*`` or a step for the months. A
    user reads this text in ``flows list`` and the web UI, where the twelve months listed one by
    one (``0 0 1 1,2,3,4,5,6,7,8,9,10,11,12 *``) hid that the pipeline simply runs monthly."""
    if months == 12:
        month_field = str(start.month)
    elif months == 1:
        month_field = "*"
    else:
        first = (start.month - 1) % months + 1  # the cycle's earliest month of the year
        month_field = f"*/{months}" if first == 1 else f"{first}-12/{months}"
    text = f"{start.minute} {start.hour} {start.day} {month_field} *"
    return _PRESETS.get(text, text)
