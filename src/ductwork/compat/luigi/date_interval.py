"""``luigi.date_interval``: a day, ISO week, month, year, or custom range of dates."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any


class DateInterval:
    """The dates ``[date_a, date_b)``."""

    def __init__(self, date_a: dt.date, date_b: dt.date) -> None:
        self.date_a = date_a
        self.date_b = date_b

    def dates(self) -> list[dt.date]:
        return [self.date_a + dt.timedelta(days=i) for i in range((self.date_b - self.date_a).days)]

    def hours(self) -> Iterator[dt.datetime]:
        for date in self.dates():
            for hour in range(24):
                yield dt.datetime.combine(date, dt.time(hour))

    def to_string(self) -> str:
        raise NotImplementedError

    @classmethod
    def from_date(cls, d: dt.date) -> DateInterval:
        raise NotImplementedError

    @classmethod
    def parse(cls, s: str) -> DateInterval | None:
        raise NotImplementedError

    def prev(self) -> DateInterval:
        return self.from_date(self.date_a - dt.timedelta(days=1))

    def next(self) -> DateInterval:
        return self.from_date(self.date_b)

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return self.to_string()

    def __hash__(self) -> int:
        return hash(repr(self))

    def __iter__(self) -> Iterator[dt.date]:
        """``for day in self.date_interval``: its dates, as ``dates()``."""
        return iter(self.dates())

    def __contains__(self, date: object) -> bool:
        return date in self.dates()

    def _key(self, other: DateInterval) -> tuple[tuple[dt.date, dt.date], tuple[dt.date, dt.date]]:
        """Both intervals' bounds, when they can be compared: as in Luigi, a year and a custom
        range of the same dates are not comparable (``TypeError``)."""
        if not isinstance(self, type(other)):
            raise TypeError("Date interval type mismatch")
        return (self.date_a, self.date_b), (other.date_a, other.date_b)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DateInterval):
            return False
        mine, theirs = self._key(other)
        return mine == theirs

    def __lt__(self, other: DateInterval) -> bool:
        mine, theirs = self._key(other)
        return mine < theirs

    def __le__(self, other: DateInterval) -> bool:
        mine, theirs = self._key(other)
        return mine <= theirs

    def __gt__(self, other: DateInterval) -> bool:
        mine, theirs = self._key(other)
        return mine > theirs

    def __ge__(self, other: DateInterval) -> bool:
        mine, theirs = self._key(other)
        return mine >= theirs


class Date(DateInterval):
    def __init__(self, y: int, m: int, d: int) -> None:
        a = dt.date(y, m, d)
        super().__init__(a, a + dt.timedelta(days=1))

    def to_string(self) -> str:
        return self.date_a.strftime("%Y-%m-%d")

    @classmethod
    def from_date(cls, d: dt.date) -> Date:
        return cls(d.year, d.month, d.day)

    @classmethod
    def parse(cls, s: str) -> Date | None:
        if re.fullmatch(r"\d\d\d\d-\d\d-\d\d", s):
            return cls.from_date(dt.date.fromisoformat(s))
        return None


class Week(DateInterval):
    def __init__(self, y: int, w: int) -> None:
        a = dt.date.fromisocalendar(y, w, 1)
        super().__init__(a, a + dt.timedelta(days=7))

    def to_string(self) -> str:
        year, week, _ = self.date_a.isocalendar()
        return f"{year}-W{week:02d}"

    @classmethod
    def from_date(cls, d: dt.date) -> Week:
        year, week, _ = d.isocalendar()
        return cls(year, week)

    @classmethod
    def parse(cls, s: str) -> Week | None:
        match = re.fullmatch(r"(\d\d\d\d)-W(\d\d)", s)
        return cls(int(match[1]), int(match[2])) if match else None


class Month(DateInterval):
    def __init__(self, y: int, m: int) -> None:
        a = dt.date(y, m, 1)
        b = dt.date(y + m // 12, m % 12 + 1, 1)
        super().__init__(a, b)

    def to_string(self) -> str:
        return self.date_a.strftime("%Y-%m")

    @classmethod
    def from_date(cls, d: dt.date) -> Month:
        return cls(d.year, d.month)

    @classmethod
    def parse(cls, s: str) -> Month | None:
        match = re.fullmatch(r"(\d\d\d\d)-(\d\d)", s)
        return cls(int(match[1]), int(match[2])) if match else None


class Year(DateInterval):
    def __init__(self, y: int) -> None:
        super().__init__(dt.date(y, 1, 1), dt.date(y + 1, 1, 1))

    def to_string(self) -> str:
        return self.date_a.strftime("%Y")

    @classmethod
    def from_date(cls, d: dt.date) -> Year:
        return cls(d.year)

    @classmethod
    def parse(cls, s: str) -> Year | None:
        return cls(int(s)) if re.fullmatch(r"\d\d\d\d", s) else None


class Custom(DateInterval):
    def to_string(self) -> str:
        return "-".join(d.strftime("%Y-%m-%d") for d in (self.date_a, self.date_b))

    @classmethod
    def parse(cls, s: str) -> Custom | None:
        if re.fullmatch(r"\d\d\d\d-\d\d-\d\d-\d\d\d\d-\d\d-\d\d", s):
            return cls(dt.date.fromisoformat(s[:10]), dt.date.fromisoformat(s[11:]))
        return None

    @classmethod
    def from_date(cls, d: dt.date) -> Any:
        raise NotImplementedError("a custom interval has no natural neighbour")
