"""Schedules: cron strings, presets and fixed intervals, and the data intervals they produce.

A scheduled run covers a data interval ``[start, end)`` and is due once ``end`` has passed, as
in Airflow; its logical date is the interval's start. Cron schedules are evaluated in the
flow's timezone on the wall clock and then attached to the zone, which is what makes an
``@daily`` flow run at local midnight on every day of the year, including the two days a year
on which a day has 23 or 25 hours. All functions here are pure: ``now`` is always passed in.
"""

from __future__ import annotations

import datetime as dt
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ductwork.core.params import DurationTooLarge, format_duration, parse_duration
from ductwork.errors import ScheduleError, did_you_mean

PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


@dataclass(frozen=True, slots=True)
class DataInterval:
    start: dt.datetime
    end: dt.datetime


def get_timezone(name: str | dt.tzinfo | None, *, where: str = "") -> dt.tzinfo:
    """The zone named ``name`` (an IANA name, ``UTC``, or a tzinfo); ``ScheduleError`` naming
    ``where`` (the flow) and the closest IANA name otherwise, a number or a typo alike."""
    if name is None:
        return dt.UTC
    if isinstance(name, dt.tzinfo):
        return _fixed(name) or name
    prefix = f"{where}: " if where else ""
    if not isinstance(name, str):  # timezone=2 was an AttributeError from .upper()
        raise ScheduleError(f"{prefix}unknown timezone {name!r} (use an IANA name such as Europe/Madrid)")
    if name.upper() == "UTC":
        return dt.UTC
    offset = _OFFSET.fullmatch(name.strip())
    if offset:
        sign = -1 if offset[1] == "-" else 1
        delta = dt.timedelta(hours=int(offset[2]), minutes=int(offset[3] or 0))
        return dt.timezone(sign * delta) if delta else dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        import zoneinfo

        guess = did_you_mean(name, zoneinfo.available_timezones())
        said = f"{prefix}unknown timezone {name!r} (use an IANA name such as Europe/Madrid)"
        raise ScheduleError(f"{said}.{guess}" if guess else said) from None


_OFFSET = re.compile(r"(?:UTC)?([+-])(\d{1,2}):?(\d\d)?", re.IGNORECASE)
"""A fixed offset as a zone's name: ``+01:00`` (pendulum's ``FixedTimezone``), ``UTC+01:00``
(what ``timezone_name`` writes for ``dt.timezone(dt.timedelta(hours=1))``)."""


def _fixed(tz: dt.tzinfo) -> dt.tzinfo | None:
    """A zone without a name (``dt.timezone(offset)``, pendulum's ``FixedTimezone``) as
    ``dt.timezone``, whose ``timezone_name`` (``UTC+01:00``) ``get_timezone`` reads back: the flow
    records that name, and a trigger or backfill read it back as an unknown timezone, so a flow
    with a fixed-offset zone imported but could not be run. None for a named zone."""
    if getattr(tz, "key", None) is not None or tz is dt.UTC:
        return None
    try:
        offset = tz.utcoffset(None)
    except Exception:  # a zone whose offset depends on the date
        return None
    if offset is None:
        return None
    return dt.timezone(offset) if offset else dt.UTC


def timezone_name(tz: dt.tzinfo) -> str:
    return getattr(tz, "key", None) or ("UTC" if tz in (dt.UTC, dt.UTC) else str(tz))


def as_aware(value: dt.datetime | dt.date, tz: dt.tzinfo) -> dt.datetime:
    """A naive datetime (or a date at midnight) read as wall-clock time in ``tz``, as UTC."""
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        return _localize(value, tz)
    return value.astimezone(dt.UTC)


def _localize(naive: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """Wall-clock time in ``tz``, returned in UTC; a time skipped by a DST jump moves forward
    past the gap. UTC because Python subtracts and adds datetimes that share a zone on the wall
    clock, which would make a 23-hour day look like 24 hours."""
    return naive.replace(tzinfo=tz).astimezone(dt.UTC)


def _plain_utc(moment: dt.datetime) -> dt.datetime:
    """``moment`` as a plain ``datetime`` in UTC (a naive one is the machine's local time, as
    ``astimezone`` reads it). Not a pendulum ``DateTime`` (Airflow DAG files pass those), whose
    arithmetic with ``datetime.UTC`` loses the zone, so it cannot be compared afterwards."""
    u = moment.astimezone(dt.UTC)
    return dt.datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=dt.UTC)


class Schedule(ABC):
    """When runs of a flow are due."""

    @property
    @abstractmethod
    def text(self) -> str:
        """The schedule as the user wrote it (for display and serialization)."""

    @abstractmethod
    def next_interval(
        self,
        last: DataInterval | None,
        *,
        start_date: dt.datetime | None,
        end_date: dt.datetime | None,
        catchup: bool,
        now: dt.datetime,
    ) -> DataInterval | None:
        """The interval of the next scheduled run after ``last`` (None: nothing more to run)."""

    def manual_interval(self, at: dt.datetime) -> DataInterval:
        """The interval a manual trigger at ``at`` covers."""
        return DataInterval(at, at)

    def run_after(self, interval: DataInterval) -> dt.datetime:
        """When the scheduled run of ``interval`` is due (Airflow's "Run After"): once the
        interval has ended, since it covers data that exists only then. Its logical date, the
        interval's start, is already past when the run starts (an @weekly run for Sunday the 6th
        starts on the 13th), so a page that says when the next run comes shows this."""
        return interval.end

    def interval_starting(self, logical_date: dt.datetime) -> DataInterval:
        """The interval whose logical date is ``logical_date`` (a run for a chosen date)."""
        return DataInterval(logical_date, logical_date)

    def interval_before(self, logical_date: dt.datetime) -> DataInterval | None:
        """The scheduled interval just before the one starting at ``logical_date`` (Airflow's
        ``prev_ds``); None when the schedule has no such thing."""
        return None

    def logical_date_holding(self, when: dt.datetime, *, start_date: dt.datetime | None) -> dt.datetime:
        """The logical date of the scheduled interval that holds ``when`` (``when`` itself if it
        is one, or if the schedule has no boundaries to snap to). For schedules whose runs exist
        only on their boundaries, as AWS Data Pipeline's instances do, a date chosen by hand is
        snapped with this; a fixed interval counts its boundaries from ``start_date``."""
        return when

    def intervals_between(
        self, start: dt.datetime, end: dt.datetime, *, now: dt.datetime, limit: int | None = None
    ) -> list[DataInterval]:
        """Every scheduled interval whose start falls in ``[start, end]`` (for backfills), the
        first ``limit`` of them if given."""
        out: list[DataInterval] = []
        last: DataInterval | None = None
        while limit is None or len(out) < limit:
            interval = self.next_interval(last, start_date=start, end_date=end, catchup=True, now=now)
            if interval is None or interval.start > end or (out and interval.start <= out[-1].start):
                return out
            out.append(interval)
            last = interval
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


class NoSchedule(Schedule):
    """Only manual triggers."""

    @property
    def text(self) -> str:
        return "None"

    def next_interval(self, last: DataInterval | None, **_: Any) -> DataInterval | None:
        return None

    def intervals_between(
        self, start: dt.datetime, end: dt.datetime, *, now: dt.datetime, limit: int | None = None
    ) -> list[DataInterval]:
        return []


class OnceSchedule(Schedule):
    """A single run at the start date."""

    @property
    def text(self) -> str:
        return "@once"

    def next_interval(
        self,
        last: DataInterval | None,
        *,
        start_date: dt.datetime | None,
        end_date: dt.datetime | None = None,
        catchup: bool = True,
        now: dt.datetime,
    ) -> DataInterval | None:
        if last is not None:
            return None
        at = start_date or now
        return DataInterval(at, at)

    def run_after(self, interval: DataInterval) -> dt.datetime:
        """The one run starts at its start date: its interval has no length to wait for."""
        return interval.start


CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-6 or SUN-SAT"),
)
"""The five fields of a cron expression, in order, and what each takes."""


def _cron_problem(expression: str) -> str:
    """Why croniter refuses ``expression``, naming the field: "not a valid cron expression"
    alone left the user to find the 61 in ``61 * * * *``. Each field is checked with the
    others left at ``*``; an error only their combination makes keeps the general message."""
    from croniter import croniter

    fields = expression.split()
    if len(fields) == len(CRON_FIELDS):
        for i, (name, allowed) in enumerate(CRON_FIELDS):
            alone = ["*"] * len(CRON_FIELDS)
            alone[i] = fields[i]
            if not croniter.is_valid(" ".join(alone)):
                return f"not a valid cron expression: its {name} field {fields[i]!r} is not valid (it takes {allowed})"
    return "not a valid cron expression"


class CronSchedule(Schedule):
    """A cron expression (or preset) evaluated on the wall clock of ``tz``."""

    def __init__(self, expression: str, tz: dt.tzinfo) -> None:
        from croniter import croniter

        self.expression = expression
        self.cron = PRESETS.get(expression, expression)
        self.tz = tz
        if not croniter.is_valid(self.cron):
            raise ValueError(_cron_problem(self.cron))
        self._croniter = croniter
        try:  # valid fields can still name a date that never comes (the 31st of February)
            croniter(self.cron, dt.datetime(2000, 1, 1)).get_next(dt.datetime)
        except ValueError:
            raise ValueError("no date matches it, so it would never run") from None
        # A cron whose hour field is "*" fires in every hour, so also in the hour a fall-back
        # repeats (02:00-03:00 twice in Madrid): read on the wall clock alone, the second pass
        # was skipped and one run covered two hours. Airflow's timetables fire in both.
        self._every_hour = croniter(self.cron).expanded[1] == ["*"]

    @property
    def text(self) -> str:
        return self.expression

    def _next_fire(self, after: dt.datetime, *, inclusive: bool = False) -> dt.datetime:
        after = _plain_utc(after)
        if inclusive:
            after -= dt.timedelta(microseconds=1)
        wall = after.astimezone(self.tz).replace(tzinfo=None)
        fires = self._croniter(self.cron, wall)
        scheduled = fires.get_next(dt.datetime)
        fire = _localize(scheduled, self.tz)
        if self._every_hour:  # the repeated hour's second pass: as far on as the wall clock says
            folded = after + (scheduled - wall)
            if after < folded and (folded < fire or fire <= after) and self._fires_at(folded):
                return folded
        while fire <= after:  # in the second pass, a wall time of the first pass is behind us
            fire = _localize(fires.get_next(dt.datetime), self.tz)
        return fire

    def _fires_at(self, moment: dt.datetime) -> bool:
        """Whether the wall-clock time of ``moment`` in the flow's zone matches the cron."""
        wall = moment.astimezone(self.tz).replace(tzinfo=None, fold=0)
        return bool(self._croniter.match(self.cron, wall))

    def _prev_fire(self, before: dt.datetime, *, inclusive: bool = True) -> dt.datetime:
        """The last fire time before ``before`` (or at it, when ``inclusive``). Fires are found
        on the wall clock; one in a DST gap (02:30 on the spring-forward day) lands past the gap,
        possibly on ``before`` itself, so the one before that is taken."""
        wall = before.astimezone(self.tz).replace(tzinfo=None)
        if inclusive:
            wall += dt.timedelta(microseconds=1)
        fires = self._croniter(self.cron, wall)
        scheduled = fires.get_prev(dt.datetime)
        fire = _localize(scheduled, self.tz)
        for _ in range(3):
            if fire < before or (inclusive and fire == before):
                break
            fire = _localize(fires.get_prev(dt.datetime), self.tz)
        if self._every_hour:  # in the repeated hour's second pass, not an hour before it
            folded = _plain_utc(before) - (wall - scheduled)
            if inclusive:
                folded += dt.timedelta(microseconds=1)
            if fire < folded and (folded < before or (inclusive and folded == before)) and self._fires_at(folded):
                return folded
        return fire

    def next_interval(
        self,
        last: DataInterval | None,
        *,
        start_date: dt.datetime | None,
        end_date: dt.datetime | None,
        catchup: bool,
        now: dt.datetime,
    ) -> DataInterval | None:
        if last is not None:
            # Aligned to this cron (the schedule may have changed since), and never before a
            # start_date moved forward since, as Airflow's timetable does.
            start = last.end
            if self._prev_fire(start, inclusive=True) != start:  # not a fire time of this cron
                start = self._next_fire(start, inclusive=True)
            if start_date is not None:
                start = max(start, self._next_fire(start_date, inclusive=True))
        elif start_date is not None:
            start = self._next_fire(start_date, inclusive=True)
        else:
            start = self._prev_fire(self._prev_fire(now), inclusive=False)
        if not catchup:
            latest_end = self._prev_fire(now)
            latest_start = self._prev_fire(latest_end, inclusive=False)
            start = max(start, latest_start)
        if end_date is not None and start > end_date:
            return None
        return DataInterval(start, self._next_fire(start))

    def manual_interval(self, at: dt.datetime) -> DataInterval:
        end = self._prev_fire(at)
        return DataInterval(self._prev_fire(end, inclusive=False), end)

    def interval_starting(self, logical_date: dt.datetime) -> DataInterval:
        return DataInterval(logical_date, self._next_fire(logical_date))

    def interval_before(self, logical_date: dt.datetime) -> DataInterval | None:
        return DataInterval(self._prev_fire(logical_date, inclusive=False), logical_date)

    def logical_date_holding(self, when: dt.datetime, *, start_date: dt.datetime | None) -> dt.datetime:
        return self._prev_fire(when, inclusive=True)


class DeltaSchedule(Schedule):
    """Runs every fixed ``delta`` from the start date."""

    def __init__(self, delta: dt.timedelta, text: str | None = None) -> None:
        if delta <= dt.timedelta(0):
            raise ValueError("the interval must be positive")
        self.delta = delta
        # Not ``str(delta)`` ("6:00:00"): the text is stored and parsed back (``parse_schedule``).
        self._text = text or format_duration(delta)

    @property
    def text(self) -> str:
        return self._text

    def next_interval(
        self,
        last: DataInterval | None,
        *,
        start_date: dt.datetime | None,
        end_date: dt.datetime | None,
        catchup: bool,
        now: dt.datetime,
    ) -> DataInterval | None:
        start = last.end if last is not None else (start_date or now - self.delta).astimezone(dt.UTC)
        if last is not None and start_date is not None and start_date > start:
            start = start_date.astimezone(dt.UTC)  # a start_date moved forward since the last run
        if not catchup and start + self.delta <= now - self.delta:
            periods = (now - start) // self.delta
            start = start + (periods - 1) * self.delta
        if end_date is not None and start > end_date:
            return None
        return DataInterval(start, start + self.delta)

    def manual_interval(self, at: dt.datetime) -> DataInterval:
        return DataInterval(at - self.delta, at)

    def interval_starting(self, logical_date: dt.datetime) -> DataInterval:
        return DataInterval(logical_date, logical_date + self.delta)

    def interval_before(self, logical_date: dt.datetime) -> DataInterval | None:
        return DataInterval(logical_date - self.delta, logical_date)

    def logical_date_holding(self, when: dt.datetime, *, start_date: dt.datetime | None) -> dt.datetime:
        if start_date is None:
            return when
        return (start_date + self.delta * ((when - start_date) // self.delta)).astimezone(when.tzinfo)


def parse_schedule(value: Any, tz: dt.tzinfo | str | None = None, *, where: str = "") -> Schedule:
    """A ``Schedule`` from None, a preset, a cron string, a timedelta or a duration string.

    Raises ``ScheduleError`` naming ``where`` (the flow) and the bad value.
    """
    zone = get_timezone(tz)
    prefix = f"{where}: " if where else ""
    if value is None or value == "None":
        return NoSchedule()
    if isinstance(value, Schedule):
        return value
    if isinstance(value, dt.timedelta):
        try:
            return DeltaSchedule(value)
        except ValueError as exc:
            raise ScheduleError(f"{prefix}invalid schedule {value!r}: {exc}") from None
    if not isinstance(value, str):
        raise ScheduleError(
            f"{prefix}invalid schedule {value!r}: use a cron string, a preset such as @daily, a timedelta, or None"
        )
    text = value.strip()
    if text == "@once":
        return OnceSchedule()
    if text.startswith("@"):
        if text not in PRESETS:
            known = ["@once", *PRESETS]
            raise ScheduleError(
                f"{prefix}invalid schedule {text!r}: unknown preset.{did_you_mean(text, known)} "
                f"Presets: {', '.join(known)}"
            )
        return CronSchedule(text, zone)
    fields = len(text.split())
    if fields > 5:
        raise ScheduleError(
            f"{prefix}invalid schedule {text!r}: a cron expression has 5 fields (minute hour day month weekday), "
            f"this one has {fields}: a seconds or year field (Quartz, Spring) is not supported"
        )
    if fields == 5:
        try:
            return CronSchedule(text, zone)
        except (ValueError, KeyError) as exc:
            raise ScheduleError(f"{prefix}invalid schedule {text!r}: {exc}") from None
    try:
        return DeltaSchedule(parse_duration(text), text)
    except DurationTooLarge as exc:
        raise ScheduleError(f"{prefix}invalid schedule {text!r}: {exc}") from None
    except ValueError:
        raise ScheduleError(
            f"{prefix}invalid schedule {text!r}: expected a cron expression with 5 fields "
            f"(minute hour day month weekday), a preset such as @daily, or an interval such as 1h"
        ) from None
