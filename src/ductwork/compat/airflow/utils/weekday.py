"""``airflow.utils.weekday.WeekDay``."""

from __future__ import annotations

import enum
from collections.abc import Iterable


@enum.unique
class WeekDay(enum.IntEnum):
    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def get_weekday_number(cls, week_day_str: str) -> int:
        try:
            return cls[week_day_str.upper()]
        except KeyError:
            raise AttributeError(f'Invalid Week Day passed: "{week_day_str}"') from None

    @classmethod
    def convert(cls, day: str | WeekDay) -> int:
        return day if isinstance(day, WeekDay) else cls.get_weekday_number(day)

    @classmethod
    def validate_week_day(cls, week_day: str | WeekDay | Iterable[str | WeekDay]) -> set[int]:
        if isinstance(week_day, str | WeekDay):
            return {cls.convert(week_day)}
        return {cls.convert(d) for d in week_day}
