"""``luigi.tools.range``: require a dated task for every period of a window that is missing.

``RangeDaily(of=Report, start=date(2024, 1, 1), stop=date(2024, 2, 1))`` requires
``Report(date=d)`` for each day of January whose output is absent (at most ``task_limit``,
oldest first unless ``reverse``); without ``start``/``stop`` the window is ``days_back`` days
before ``now`` to ``days_forward`` after, as in Luigi. ``RangeHourly`` and ``RangeByMinutes``
take date-hours and minutes, ``RangeMonthly`` months.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from .. import parameter as p
from ..task import WrapperTask

logger = logging.getLogger("luigi-interface")


class RangeBase(WrapperTask):
    of = p.TaskParameter(description="Task class to instantiate for each period")
    of_params = p.DictParameter(default={}, description="Arguments to pass to 'of' besides the date")
    reverse = p.BoolParameter(default=False, description="Schedule the most recent periods first")
    task_limit = p.IntParameter(default=50, description="How many of 'of' to require at most")
    now = p.IntParameter(default=None, description="Seconds since the epoch to use as 'now'", significant=False)
    param_name = p.Parameter(
        default=None, description="The date parameter of 'of' (default: the first)", positional=False
    )

    def _now(self) -> dt.datetime:
        return dt.datetime.utcfromtimestamp(self.now if self.now is not None else time.time())

    def datetime_to_parameter(self, value: dt.datetime) -> Any:
        raise NotImplementedError

    def parameter_to_datetime(self, value: Any) -> dt.datetime:
        raise NotImplementedError

    def finite_datetimes(self, finite_start: dt.datetime, finite_stop: dt.datetime) -> list[dt.datetime]:
        raise NotImplementedError

    def moving_start(self, now: dt.datetime) -> dt.datetime:
        raise NotImplementedError

    def moving_stop(self, now: dt.datetime) -> dt.datetime:
        raise NotImplementedError

    def _instantiate(self, value: Any) -> Any:
        name = self.param_name or next(iter(self.of.get_params()))
        return self.of(**{**dict(self.of_params), name: value})

    def _bounds(self) -> tuple[dt.datetime, dt.datetime]:
        now = self._now()
        start = getattr(self, "start", None)
        stop = getattr(self, "stop", None)
        lo = self.moving_start(now)
        hi = self.moving_stop(now)
        if start is not None:
            lo = max(lo, self.parameter_to_datetime(start))
        if stop is not None:
            hi = min(hi, self.parameter_to_datetime(stop))
        return lo, hi

    def missing_datetimes(self, finite_datetimes: list[dt.datetime]) -> list[dt.datetime]:
        return [d for d in finite_datetimes if not self._instantiate(self.datetime_to_parameter(d)).complete()]

    def requires(self) -> list[Any]:
        lo, hi = self._bounds()
        datetimes = self.finite_datetimes(lo, hi) if lo < hi else []
        missing = self.missing_datetimes(datetimes)
        if self.reverse:
            missing = missing[::-1]
        chosen = missing[: self.task_limit]
        logger.debug("%s: %d of %d periods missing, requiring %d", self, len(missing), len(datetimes), len(chosen))
        return [self._instantiate(self.datetime_to_parameter(d)) for d in chosen]


class RangeDailyBase(RangeBase):
    start = p.DateParameter(default=None, description="beginning date, inclusive")
    stop = p.DateParameter(default=None, description="ending date, exclusive")
    days_back = p.IntParameter(default=100, description="how far back, when no start is given")
    days_forward = p.IntParameter(default=0, description="how far forward, when no stop is given")

    def datetime_to_parameter(self, value: dt.datetime) -> Any:
        return value.date()

    def parameter_to_datetime(self, value: Any) -> dt.datetime:
        return dt.datetime(value.year, value.month, value.day)

    def moving_start(self, now: dt.datetime) -> dt.datetime:
        return dt.datetime(now.year, now.month, now.day) - dt.timedelta(days=self.days_back)

    def moving_stop(self, now: dt.datetime) -> dt.datetime:
        return dt.datetime(now.year, now.month, now.day) + dt.timedelta(days=self.days_forward)

    def finite_datetimes(self, finite_start: dt.datetime, finite_stop: dt.datetime) -> list[dt.datetime]:
        day = dt.datetime(finite_start.year, finite_start.month, finite_start.day)
        if day < finite_start:
            day += dt.timedelta(days=1)
        out = []
        while day < finite_stop:
            out.append(day)
            day += dt.timedelta(days=1)
        return out


class RangeHourlyBase(RangeBase):
    start = p.DateHourParameter(default=None, description="beginning datehour, inclusive")
    stop = p.DateHourParameter(default=None, description="ending datehour, exclusive")
    hours_back = p.IntParameter(default=100 * 24, description="how far back, when no start is given")
    hours_forward = p.IntParameter(default=0, description="how far forward, when no stop is given")

    def datetime_to_parameter(self, value: dt.datetime) -> Any:
        return value

    def parameter_to_datetime(self, value: Any) -> dt.datetime:
        return value

    def moving_start(self, now: dt.datetime) -> dt.datetime:
        return now.replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=self.hours_back)

    def moving_stop(self, now: dt.datetime) -> dt.datetime:
        return now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=self.hours_forward)

    def finite_datetimes(self, finite_start: dt.datetime, finite_stop: dt.datetime) -> list[dt.datetime]:
        hour = finite_start.replace(minute=0, second=0, microsecond=0)
        if hour < finite_start:
            hour += dt.timedelta(hours=1)
        out = []
        while hour < finite_stop:
            out.append(hour)
            hour += dt.timedelta(hours=1)
        return out


class RangeByMinutesBase(RangeBase):
    start = p.DateMinuteParameter(default=None, description="beginning date-hour-minute, inclusive")
    stop = p.DateMinuteParameter(default=None, description="ending date-hour-minute, exclusive")
    minutes_back = p.IntParameter(default=60 * 24, description="how far back, when no start is given")
    minutes_forward = p.IntParameter(default=0, description="how far forward, when no stop is given")
    minutes_interval = p.IntParameter(default=1, description="minutes between two periods; divides 60")

    def datetime_to_parameter(self, value: dt.datetime) -> Any:
        return value

    def parameter_to_datetime(self, value: Any) -> dt.datetime:
        return value

    def moving_start(self, now: dt.datetime) -> dt.datetime:
        return now.replace(second=0, microsecond=0) - dt.timedelta(minutes=self.minutes_back)

    def moving_stop(self, now: dt.datetime) -> dt.datetime:
        return now.replace(second=0, microsecond=0) + dt.timedelta(minutes=self.minutes_forward)

    def finite_datetimes(self, finite_start: dt.datetime, finite_stop: dt.datetime) -> list[dt.datetime]:
        if not 0 < self.minutes_interval <= 60 or 60 % self.minutes_interval:
            raise p.ParameterException("minutes_interval must divide 60")
        step = dt.timedelta(minutes=self.minutes_interval)
        t = finite_start.replace(
            minute=finite_start.minute - finite_start.minute % self.minutes_interval, second=0, microsecond=0
        )
        if t < finite_start:
            t += step
        out = []
        while t < finite_stop:
            out.append(t)
            t += step
        return out


class RangeMonthly(RangeBase):
    start = p.MonthParameter(default=None, description="beginning month, inclusive")
    stop = p.MonthParameter(default=None, description="ending month, exclusive")
    months_back = p.IntParameter(default=13, description="how far back, when no start is given")
    months_forward = p.IntParameter(default=0, description="how far forward, when no stop is given")

    def datetime_to_parameter(self, value: dt.datetime) -> Any:
        return value.date()

    def parameter_to_datetime(self, value: Any) -> dt.datetime:
        return dt.datetime(value.year, value.month, 1)

    @staticmethod
    def _shift(month: dt.datetime, n: int) -> dt.datetime:
        index = month.year * 12 + month.month - 1 + n
        return dt.datetime(index // 12, index % 12 + 1, 1)

    def moving_start(self, now: dt.datetime) -> dt.datetime:
        return self._shift(dt.datetime(now.year, now.month, 1), -self.months_back)

    def moving_stop(self, now: dt.datetime) -> dt.datetime:
        return self._shift(dt.datetime(now.year, now.month, 1), self.months_forward + 1)

    def finite_datetimes(self, finite_start: dt.datetime, finite_stop: dt.datetime) -> list[dt.datetime]:
        month = dt.datetime(finite_start.year, finite_start.month, 1)
        if month < finite_start:
            month = self._shift(month, 1)
        out = []
        while month < finite_stop:
            out.append(month)
            month = self._shift(month, 1)
        return out


class RangeDaily(RangeDailyBase):
    """Every missing day of the window."""


class RangeHourly(RangeHourlyBase):
    """Every missing hour of the window."""


class RangeByMinutes(RangeByMinutesBase):
    """Every missing period of ``minutes_interval`` minutes of the window."""


__all__ = [
    "RangeByMinutes",
    "RangeByMinutesBase",
    "RangeDaily",
    "RangeDailyBase",
    "RangeHourly",
    "RangeHourlyBase",
    "RangeMonthly",
]
