"""Date-times as AWS Data Pipeline writes them: its DateTime text and Joda-Time format patterns.

AWS Data Pipeline evaluates ``format(@scheduledStartTime, 'YYYY-MM-dd HH:mm:ss')`` with Joda-Time's
``DateTimeFormat``, whose letters differ from ``strftime`` (``hh`` is the 1-12 clock hour,
``YYYY`` the year of era, ``'text'`` is quoted literal text). Pipelines carry those patterns
unchanged, so they are interpreted here letter by letter rather than translated to strftime.
All date-times are UTC, as in AWS Data Pipeline.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from functools import lru_cache

_DATETIME = re.compile(
    r"^\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6}))?)?)?\s*(?:z|Z|UTC)?\s*$"
)


def parse_datetime(text: str) -> dt.datetime:
    """``2012-01-15T23:59:00`` (AWS's form; also ``2011-05-24T0:00:00``, a date alone, a trailing
    ``Z``), in UTC. Raises ``ValueError`` otherwise."""
    match = _DATETIME.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a date-time like 2012-01-15T23:59:00")
    year, month, day, hour, minute, second, fraction = match.groups()
    micro = int((fraction or "0").ljust(6, "0"))
    return dt.datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tzinfo=dt.UTC
    )


def iso(value: dt.datetime) -> str:
    """A DateTime as AWS Data Pipeline prints it: ``2012-01-15T23:59:00`` (UTC)."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def add(value: dt.datetime, unit: str, amount: int) -> dt.datetime:
    """``value`` moved by ``amount`` units; months and years keep the day, clamped to the
    month's last day (Joda's rule: Jan 31 plus one month is Feb 28 or 29)."""
    if unit in ("years", "months"):
        months = amount * (12 if unit == "years" else 1)
        index = value.year * 12 + value.month - 1 + months
        year, month = divmod(index, 12)
        month += 1
        if not 1 <= year <= 9999:
            raise ValueError("the date is out of range")
        day = min(value.day, calendar.monthrange(year, month)[1])
        return value.replace(year=year, month=month, day=day)
    seconds = {"weeks": 7 * 86400, "days": 86400, "hours": 3600, "minutes": 60}[unit]
    return value + dt.timedelta(seconds=seconds * amount)


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
    """``value`` (read in UTC) formatted with a Joda-Time ``DateTimeFormat`` pattern."""
    value = value.astimezone(dt.UTC)
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
        return "Coordinated Universal Time" if count >= 4 else "UTC"
    if letter == "Z":
        return "UTC" if count >= 3 else ("+00:00" if count == 2 else "+0000")
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
