"""Date-times as AWS Data Pipeline writes them: its DateTime text and Joda-Time format patterns.

AWS Data Pipeline evaluates ``format(@scheduledStartTime, 'YYYY-MM-dd HH:mm:ss')`` with Joda-Time's
``DateTimeFormat``, whose letters differ from ``strftime`` (``hh`` is the 1-12 clock hour,
``YYYY`` the year of era, ``'text'`` is quoted literal text). Pipelines carry those patterns
unchanged, so they are interpreted here letter by letter rather than translated to strftime.
Date-times are UTC, as in AWS Data Pipeline, until ``inTimeZone`` moves one into a time zone:
its fields, its format and the calendar arithmetic on it (``plusDays``, ``midnight``) are then
those of the zone's wall clock, while hours and minutes are added as elapsed time (Joda-Time's
rules, daylight saving time included).
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DATETIME = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6}))?)?)?"
    r"\s*(?:z|Z|UTC|([+-]\d{2}:?\d{2}))?\s*$"
)


def parse_datetime(text: str) -> dt.datetime:
    """``2012-01-15T23:59:00`` (AWS's form; also ``2011-05-24T0:00:00``, a date alone, a trailing
    ``Z``), in UTC; with an offset (``2011-05-24T10:10:00.000-07:00``, how a DateTime moved by
    ``inTimeZone`` prints) at that offset. Raises ``ValueError`` otherwise."""
    match = _DATETIME.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a date-time like 2012-01-15T23:59:00")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0").ljust(6, "0"))
    zone = dt.UTC if offset is None or offset.replace(":", "") in ("+0000", "-0000") else time_zone(offset)
    return dt.datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tzinfo=zone
    )


def is_utc(value: dt.datetime) -> bool:
    return value.tzinfo is None or value.tzinfo is dt.UTC


def iso(value: dt.datetime) -> str:
    """A DateTime as AWS Data Pipeline prints it: ``2012-01-15T23:59:00`` (UTC); one moved into
    a time zone by ``inTimeZone`` as Joda-Time prints it, ``2011-05-24T10:10:00.000-07:00``."""
    if is_utc(value):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{value.strftime('%Y-%m-%dT%H:%M:%S')}.{value.microsecond // 1000:03d}{_offset(value, colon=True)}"


def time_zone(name: str) -> dt.tzinfo:
    """A Joda-Time zone id: ``UTC``, an IANA name (``America/Los_Angeles``) or an offset
    (``-08:00``, ``+0530``). Raises ``ValueError`` naming the forms."""
    text = name.strip()
    if text.upper() in ("UTC", "Z", "GMT", "ETC/UTC"):
        return dt.UTC
    offset = _OFFSET.match(text)
    if offset is not None:
        sign, hours, minutes = offset.groups()
        delta = dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta >= dt.timedelta(hours=24):
            raise ValueError(f"time zone offset {name!r} is out of range")
        return dt.timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use a name such as 'America/Los_Angeles', 'UTC' or an offset such as '-08:00'"
        ) from None


_OFFSET = re.compile(r"^([+-])(\d{1,2})(?::?(\d{2}))?$")


def in_zone(value: dt.datetime, zone: str) -> dt.datetime:
    """The same instant on the wall clock of ``zone`` (``inTimeZone``)."""
    return value.astimezone(time_zone(zone))


def _normal(value: dt.datetime) -> dt.datetime:
    """A wall-clock time in its zone made a real one: a time skipped by a daylight saving jump
    moves forward past the gap, as Joda-Time moves it."""
    if is_utc(value):
        return value
    assert value.tzinfo is not None
    return value.astimezone(dt.UTC).astimezone(value.tzinfo)


def add(value: dt.datetime, unit: str, amount: int) -> dt.datetime:
    """``value`` moved by ``amount`` units; months and years keep the day, clamped to the
    month's last day (Joda's rule: Jan 31 plus one month is Feb 28 or 29). Years to days move
    the wall clock's date and keep its time of day (a day across a daylight saving change is 23
    or 25 hours); hours and minutes are elapsed time."""
    if unit in ("years", "months"):
        months = amount * (12 if unit == "years" else 1)
        index = value.year * 12 + value.month - 1 + months
        year, month = divmod(index, 12)
        month += 1
        if not 1 <= year <= 9999:
            raise ValueError("the date is out of range")
        day = min(value.day, calendar.monthrange(year, month)[1])
        return _normal(value.replace(year=year, month=month, day=day))
    if unit in ("weeks", "days"):
        return _normal(value + dt.timedelta(days=amount * (7 if unit == "weeks" else 1)))
    seconds = {"hours": 3600, "minutes": 60}[unit] * amount
    if is_utc(value):
        return value + dt.timedelta(seconds=seconds)
    assert value.tzinfo is not None
    return (value.astimezone(dt.UTC) + dt.timedelta(seconds=seconds)).astimezone(value.tzinfo)


def wall_clock(
    value: dt.datetime,
    *,
    day: int | None = None,
    hour: int | None = None,
    minute: int | None = None,
    second: int | None = None,
    microsecond: int | None = None,
) -> dt.datetime:
    """``value`` with wall-clock fields replaced (``midnight``, ``firstOfMonth``), normalized."""
    return _normal(
        value.replace(
            day=value.day if day is None else day,
            hour=value.hour if hour is None else hour,
            minute=value.minute if minute is None else minute,
            second=value.second if second is None else second,
            microsecond=value.microsecond if microsecond is None else microsecond,
        )
    )


_TEXT_FIELDS = {"E", "a", "z"}
_KNOWN = set("GCYxwweEyDMdaKhHkmsSzZ")


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> tuple[tuple[str, str | int], ...]:
    """A pattern as ``(letter, count)`` fields and ``("", text)`` literals; raises ``ValueError``
    naming the first letter Joda-Time would refuse."""
    out: list[tuple[str, str | int]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            end = i + 1
            text: list[str] = []
            while True:
                if end >= len(pattern):
                    raise ValueError(f"unterminated quote in date format {pattern!r}")
                if pattern[end] == "'":
                    if end + 1 < len(pattern) and pattern[end + 1] == "'":
                        text.append("'")
                        end += 2
                        continue
                    break
                text.append(pattern[end])
                end += 1
            out.append(("", "".join(text) if end > i + 1 else "'"))
            i = end + 1
            continue
        if ch.isascii() and ch.isalpha():
            if ch not in _KNOWN:
                raise ValueError(f"date format {pattern!r}: unknown pattern letter {ch!r}")
            count = 1
            while i + count < len(pattern) and pattern[i + count] == ch:
                count += 1
            out.append((ch, count))
            i += count
            continue
        out.append(("", ch))
        i += 1
    return tuple(out)


def format_datetime(value: dt.datetime, pattern: str) -> str:
    """``value`` formatted with a Joda-Time ``DateTimeFormat`` pattern, on the wall clock of its
    zone (UTC unless ``inTimeZone`` moved it)."""
    value = value.astimezone(dt.UTC) if is_utc(value) else value
    pieces: list[str] = []
    for letter, spec in compile_pattern(pattern):
        if letter == "":
            pieces.append(str(spec))
        else:
            assert isinstance(spec, int)
            pieces.append(_field(value, letter, spec))
    return "".join(pieces)


def _num(number: int, count: int) -> str:
    return str(number).zfill(count)


def _field(v: dt.datetime, letter: str, count: int) -> str:
    if letter in ("y", "Y", "x"):
        year = v.isocalendar()[0] if letter == "x" else v.year
        return _num(year % 100, 2) if count == 2 else _num(year, count)
    if letter == "M":
        if count >= 4:
            return calendar.month_name[v.month]
        if count == 3:
            return calendar.month_abbr[v.month]
        return _num(v.month, count)
    if letter == "E":
        return calendar.day_name[v.weekday()] if count >= 4 else calendar.day_abbr[v.weekday()]
    if letter == "a":
        return "AM" if v.hour < 12 else "PM"
    if letter == "z":
        if is_utc(v):
            return "Coordinated Universal Time" if count >= 4 else "UTC"
        return v.tzname() or _offset(v, colon=True)  # Python knows no long names such as "Pacific Standard Time"
    if letter == "Z":
        if count >= 3:
            return _zone_id(v)
        return _offset(v, colon=count == 2)
    if letter == "G":
        return "AD"
    if letter == "S":
        return str(v.microsecond).zfill(6)[:count].ljust(count, "0")
    numbers = {
        "C": v.year // 100,
        "w": v.isocalendar()[1],
        "e": v.isoweekday(),
        "D": v.timetuple().tm_yday,
        "d": v.day,
        "K": v.hour % 12,
        "h": (v.hour % 12) or 12,
        "H": v.hour,
        "k": v.hour or 24,
        "m": v.minute,
        "s": v.second,
    }
    return _num(numbers[letter], count)


def _offset(v: dt.datetime, *, colon: bool) -> str:
    """``-0700`` or ``-07:00`` (Joda-Time prints UTC's as ``+0000``)."""
    delta = v.utcoffset() or dt.timedelta(0)
    sign = "-" if delta < dt.timedelta(0) else "+"
    minutes = abs(int(delta.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}{':' if colon else ''}{minutes % 60:02d}"


def _zone_id(v: dt.datetime) -> str:
    if is_utc(v):
        return "UTC"
    key = getattr(v.tzinfo, "key", None)
    return str(key) if key else _offset(v, colon=True)
