"""``luigi.tools.range``: require a dated task for every period of a window that is missing.

``RangeDaily(of=Report, start=date(2024, 1, 1), stop=date(2024, 2, 1))`` requires
``Report(date=d)`` for each day of January whose output is absent, as Luigi does: the window is
``[start, stop)`` cut to ``days_back`` days before ``now`` and ``days_forward`` after it; at most
``task_limit`` tasks are required, the oldest missing ones (the newest with ``reverse``). The
answer is computed once per instance. ``RangeHourly``, ``RangeByMinutes`` and ``RangeMonthly``
do the same for hours, ``minutes_interval`` periods and months.

Finding what is missing: ``RangeDaily``, ``RangeHourly`` and ``RangeByMinutes`` ask the task
class's ``bulk_complete`` first; a class without one is checked by listing its outputs' folders
(the date-hour digits of a sample of output paths become ``[0-9]`` globs, narrowed to the digits
the wanted paths have), so a window of years costs a few listings, not a check per period. The
``*Base`` classes and ``RangeMonthly`` check each task's ``complete()``. Each computation
triggers the ``RangeEvent`` events (delay, complete count and fraction) with the task family.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .. import parameter as p
from ..event import Event
from ..target import FileSystemTarget
from ..task import WrapperTask, flatten_output
from ..task_register import Register

logger = logging.getLogger("luigi-interface")

_DIGIT = "[0-9]"


class RangeEvent(Event):
    """What a range reports each time it works out its missing periods: ``DELAY`` counts the
    periods from the first missing one to the end of the window, ``COMPLETE_COUNT`` the complete
    ones, ``COMPLETE_FRACTION`` their share of the window (1 for an empty window)."""

    COMPLETE_COUNT = "event.tools.range.complete.count"
    COMPLETE_FRACTION = "event.tools.range.complete.fraction"
    DELAY = "event.tools.range.delay"


class RangeBase(WrapperTask):
    """The window arithmetic shared by every range; subclasses say what a period is."""

    of = p.TaskParameter(description="task name to be completed; it takes a single datetime parameter")
    of_params = p.DictParameter(default={}, description="Arguments to pass to 'of' besides the date")
    start = p.Parameter()
    stop = p.Parameter()
    reverse = p.BoolParameter(default=False, description="Require the newest missing periods first")
    task_limit = p.IntParameter(default=50, description="How many of 'of' to require at most")
    now = p.IntParameter(default=None, description="Seconds since the epoch to use as the current time")
    param_name = p.Parameter(
        default=None, description="The parameter of 'of' that takes the period (default: its first)", positional=False
    )

    # --- what a subclass defines ----------------------------------------------------------------
    def datetime_to_parameter(self, value: dt.datetime) -> Any:
        raise NotImplementedError

    def parameter_to_datetime(self, value: Any) -> dt.datetime:
        raise NotImplementedError

    def datetime_to_parameters(self, value: dt.datetime) -> dict[str, Any]:
        """The arguments of the task for the period starting at ``value``."""
        raise NotImplementedError

    def parameters_to_datetime(self, values: dict[str, Any]) -> dt.datetime:
        """The period a task's arguments stand for."""
        raise NotImplementedError

    def moving_start(self, now: dt.datetime) -> dt.datetime:
        """The earliest time to keep complete when ``start`` is unset or further back."""
        raise NotImplementedError

    def moving_stop(self, now: dt.datetime) -> dt.datetime:
        """The latest time to keep complete when ``stop`` is unset or further ahead."""
        raise NotImplementedError

    def finite_datetimes(self, finite_start: dt.datetime, finite_stop: dt.datetime) -> list[dt.datetime]:
        """The starts of the periods in ``[finite_start, finite_stop)``, in order."""
        raise NotImplementedError

    # --- the task's arguments -------------------------------------------------------------------
    @property
    def of_cls(self) -> Any:
        """``of`` as a class (a name given from Python, not the command line, is looked up)."""
        if isinstance(self.of, str):
            warnings.warn('When using Range programatically, dont pass "of" param as string!', stacklevel=2)
            return Register.get_task_cls(self.of)
        return self.of

    @property
    def _param_name(self) -> str:
        if self.param_name is not None:
            return str(self.param_name)
        pairs = self.of_cls.get_params()
        return next(name for name, param in pairs if getattr(param, "positional", True))

    def _task_parameters(self, value: Any) -> dict[str, Any]:
        return {**dict(self.of_params), self._param_name: value}

    def _instantiate_task_cls(self, value: Any) -> Any:
        return self.of_cls(**self._task_parameters(value))

    # --- formatting ----------------------------------------------------------------------------
    def _format_datetime(self, value: dt.datetime) -> Any:
        return self.datetime_to_parameter(value)

    def _format_range(self, datetimes: Sequence[dt.datetime]) -> str:
        return f"[{self._format_datetime(datetimes[0])}, {self._format_datetime(datetimes[-1])}]"

    # --- the requirements ------------------------------------------------------------------------
    def requires(self) -> list[Any]:
        cached = self.__dict__.get("_cached_requires")
        if cached is not None:
            return cached
        if not self.start and not self.stop:
            raise p.ParameterException("At least one of start and stop needs to be specified")
        if not self.start and not self.reverse:
            raise p.ParameterException("Either start needs to be specified or reverse needs to be True")
        if self.start and self.stop and self.start > self.stop:
            raise p.ParameterException("Can't have start > stop")
        now = dt.datetime.fromtimestamp(time.time() if self.now is None else self.now, dt.UTC).replace(tzinfo=None)
        finite_start = self.moving_start(now)
        if self.start is not None:
            finite_start = max(finite_start, self.parameter_to_datetime(self.start))
        finite_stop = self.moving_stop(now)
        if self.stop is not None:
            finite_stop = min(finite_stop, self.parameter_to_datetime(self.stop))
        datetimes = self.finite_datetimes(finite_start, finite_stop) if finite_start <= finite_stop else []
        family = self.of_cls.get_task_family()
        missing: list[dt.datetime] = []
        if datetimes:
            logger.debug("Actually checking if range %s of %s is complete", self._format_range(datetimes), family)
            missing = sorted(self._missing_datetimes(datetimes))
            logger.debug("Range %s lacked %d of expected %d %s instances", self._format_range(datetimes),
                         len(missing), len(datetimes), family)  # fmt: skip
        else:
            logger.debug("Empty range. No %s instances expected", family)
        self._emit_metrics(missing, finite_start, finite_stop)
        chosen = missing[-self.task_limit :][::-1] if self.reverse else missing[: self.task_limit]
        if chosen:
            logger.debug("Requiring %d missing %s instances in range %s", len(chosen), family,
                         self._format_range(sorted(chosen)))  # fmt: skip
        required = [self._instantiate_task_cls(self.datetime_to_parameter(d)) for d in chosen]
        self.__dict__["_cached_requires"] = required
        return required

    def missing_datetimes(self, finite_datetimes: list[dt.datetime]) -> list[dt.datetime]:
        """The periods whose task is not complete, checked one task at a time (subclasses that
        can do better, e.g. with ``bulk_complete``, override this)."""
        return [d for d in finite_datetimes if not self._instantiate_task_cls(self.datetime_to_parameter(d)).complete()]

    def _missing_datetimes(self, finite_datetimes: list[dt.datetime]) -> Any:
        """Also takes an override written for Luigi 1 (``missing_datetimes(task_cls, datetimes)``)."""
        try:
            return self.missing_datetimes(finite_datetimes)
        except TypeError as exc:
            if "missing_datetimes()" not in repr(exc):
                raise
            warnings.warn(
                "In your Range* subclass, missing_datetimes() should only take 1 argument (see latest docs)",
                stacklevel=2,
            )
            return self.missing_datetimes(self.of_cls, finite_datetimes)  # type: ignore[call-arg]

    def _emit_metrics(self, missing: list[dt.datetime], finite_start: dt.datetime, finite_stop: dt.datetime) -> None:
        """The events, over the whole ``[start, stop)`` when both are set (the window that was
        checked is only the part of it within ``days_back``/``days_forward``)."""
        lo = finite_start if self.start is None else min(finite_start, self.parameter_to_datetime(self.start))
        hi = finite_stop if self.stop is None else max(finite_stop, self.parameter_to_datetime(self.stop))
        datetimes = self.finite_datetimes(lo, hi)
        family = self.of_cls.get_task_family()
        delay = len(datetimes) - datetimes.index(missing[0]) if datetimes and missing else 0
        complete = len(datetimes) - len(missing)
        self.trigger_event(RangeEvent.DELAY, family, delay)
        self.trigger_event(RangeEvent.COMPLETE_COUNT, family, complete)
        self.trigger_event(RangeEvent.COMPLETE_FRACTION, family, complete / len(datetimes) if datetimes else 1)


def _periods(nth: Callable[[int], dt.datetime], lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    """The period starts ``nth(0), nth(1)...`` (``nth(0)`` at or before ``lo``) in ``[lo, hi)``."""
    out = []
    index = 0
    while (point := nth(index)) < hi:
        if point >= lo:
            out.append(point)
        index += 1
    return out


class RangeDailyBase(RangeBase):
    """Days: ``start`` and ``stop`` are dates; ``days_back``/``days_forward`` bound the window."""

    start = p.DateParameter(default=None, description="beginning date, inclusive")
    stop = p.DateParameter(default=None, description="ending date, exclusive")
    days_back = p.IntParameter(default=100, description="how far back from now to keep complete")
    days_forward = p.IntParameter(default=0, description="how far ahead of now to keep complete")

    def datetime_to_parameter(self, value: dt.datetime) -> Any:
        return value.date()

    def parameter_to_datetime(self, value: Any) -> dt.datetime:
        return dt.datetime(value.year, value.month, value.day)

    def datetime_to_parameters(self, value: dt.datetime) -> dict[str, Any]:
        return self._task_parameters(value.date())

    def parameters_to_datetime(self, values: dict[str, Any]) -> dt.datetime:
        return self.parameter_to_datetime(values[self._param_name])

    def moving_start(self, now: dt.datetime) -> dt.datetime:
        return now - dt.timedelta(days=self.days_back)

    def moving_stop(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(days=self.days_forward)

    def finite_datetimes(self, finite_start: dt.datetime, finite_stop: dt.datetime) -> list[dt.datetime]:
        first = dt.datetime(finite_start.year, finite_start.month, finite_start.day)
        return _periods(lambda i: first + dt.timedelta(days=i), finite_start, finite_stop)


class RangeHourlyBase(RangeBase):
    """Hours: ``start`` and ``stop`` are date-hours; ``hours_back``/``hours_forward`` bound it."""

    start = p.DateHourParameter(default=None, description="beginning datehour, inclusive")
    stop = p.DateHourParameter(default=None, description="ending datehour, exclusive")
    hours_back = p.IntParameter(default=100 * 24, description="how far back from now to keep complete")
    hours_forward = p.IntParameter(default=0, description="how far ahead of now to keep complete")

    def datetime_to_parameter(self, value: dt.datetime) -> Any:
        return value

    def parameter_to_datetime(self, value: Any) -> dt.datetime:
        return value

    def datetime_to_parameters(self, value: dt.datetime) -> dict[str, Any]:
        return self._task_parameters(value)

    def parameters_to_datetime(self, values: dict[str, Any]) -> dt.datetime:
        return values[self._param_name]

    def moving_start(self, now: dt.datetime) -> dt.datetime:
        return now - dt.timedelta(hours=self.hours_back)

    def moving_stop(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(hours=self.hours_forward)

    def finite_datetimes(self, finite_start: dt.datetime, finite_stop: dt.datetime) -> list[dt.datetime]:
        first = dt.datetime(finite_start.year, finite_start.month, finite_start.day, finite_start.hour)
        return _periods(lambda i: first + dt.timedelta(hours=i), finite_start, finite_stop)

    def _format_datetime(self, value: dt.datetime) -> Any:
        return p.DateHourParameter().serialize(value)


class RangeByMinutesBase(RangeBase):
    """Periods of ``minutes_interval`` minutes (a divisor of 60) aligned on the hour."""

    start = p.DateMinuteParameter(default=None, description="beginning date-hour-minute, inclusive")
    stop = p.DateMinuteParameter(default=None, description="ending date-hour-minute, exclusive")
    minutes_back = p.IntParameter(default=60 * 24, description="how far back from now to keep complete")
    minutes_forward = p.IntParameter(default=0, description="how far ahead of now to keep complete")
    minutes_interval = p.IntParameter(default=1, description="minutes between two periods; it divides 60")

    def datetime_to_parameter(self, value: dt.datetime) -> Any:
        return value

    def parameter_to_datetime(self, value: Any) -> dt.datetime:
        return value

    def datetime_to_parameters(self, value: dt.datetime) -> dict[str, Any]:
        return self._task_parameters(value)

    def parameters_to_datetime(self, values: dict[str, Any]) -> dt.datetime:
        value = values[self._param_name]
        return dt.datetime(value.year, value.month, value.day, value.hour, value.minute)

    def moving_start(self, now: dt.datetime) -> dt.datetime:
        return now - dt.timedelta(minutes=self.minutes_back)

    def moving_stop(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(minutes=self.minutes_forward)

    def finite_datetimes(self, finite_start: dt.datetime, finite_stop: dt.datetime) -> list[dt.datetime]:
        step = self.minutes_interval
        if not 0 < step < 60:
            raise p.ParameterException("minutes-interval must be within 0..60")
        if 60 % step:
            raise p.ParameterException("minutes-interval does not evenly divide 60")
        first = finite_start.replace(minute=finite_start.minute // step * step, second=0, microsecond=0)
        return _periods(lambda i: first + dt.timedelta(minutes=i * step), finite_start, finite_stop)

    def _format_datetime(self, value: dt.datetime) -> Any:
        return p.DateMinuteParameter().serialize(value)


def _month_start(value: dt.datetime) -> dt.datetime:
    return dt.datetime(value.year, value.month, 1)


def _add_months(value: dt.datetime, months: int) -> dt.datetime:
    index = value.year * 12 + value.month - 1 + months
    return dt.datetime(index // 12, index % 12 + 1, 1)


class RangeMonthly(RangeBase):
    """Months: ``start`` and ``stop`` are months; ``months_back``/``months_forward`` bound the
    window, counted from the start of the current month. Each task is checked on its own."""

    start = p.MonthParameter(default=None, description="beginning month, inclusive")
    stop = p.MonthParameter(default=None, description="ending month, exclusive")
    months_back = p.IntParameter(default=13, description="how far back from now to keep complete")
    months_forward = p.IntParameter(default=0, description="how far ahead of now to keep complete")

    def datetime_to_parameter(self, value: dt.datetime) -> Any:
        return dt.date(value.year, value.month, 1)

    def parameter_to_datetime(self, value: Any) -> dt.datetime:
        return dt.datetime(value.year, value.month, 1)

    def datetime_to_parameters(self, value: dt.datetime) -> dict[str, Any]:
        return self._task_parameters(value.date())

    def parameters_to_datetime(self, values: dict[str, Any]) -> dt.datetime:
        return self.parameter_to_datetime(values[self._param_name])

    def _format_datetime(self, value: dt.datetime) -> Any:
        return value.strftime("%Y-%m")

    def moving_start(self, now: dt.datetime) -> dt.datetime:
        return _add_months(_month_start(now), -self.months_back)

    def moving_stop(self, now: dt.datetime) -> dt.datetime:
        return _add_months(_month_start(now), self.months_forward)

    def finite_datetimes(self, finite_start: dt.datetime, finite_stop: dt.datetime) -> list[dt.datetime]:
        first = _month_start(finite_start)
        return _periods(lambda i: _add_months(first, i), finite_start, _month_start(finite_stop))


class _BulkChecked:
    """``missing_datetimes`` through the task class's ``bulk_complete``, or else by listing the
    folders of its outputs (``infer_bulk_complete_from_fs``)."""

    datetime_pattern = ""
    """``strftime`` pattern of the regular expression that finds a period's digits in a path."""

    def missing_datetimes(self: Any, finite_datetimes: list[dt.datetime]) -> list[dt.datetime]:
        of = self.of_cls
        with_params = functools.partial(of, **dict(self.of_params))
        values = [self.datetime_to_parameter(d) for d in finite_datetimes]
        try:
            complete = of.bulk_complete.__func__(with_params, values)
        except NotImplementedError:
            return infer_bulk_complete_from_fs(
                finite_datetimes,
                lambda d: self._instantiate_task_cls(self.datetime_to_parameter(d)),
                lambda d: d.strftime(self.datetime_pattern),
            )
        done = {self.parameter_to_datetime(v) for v in complete}
        return [d for d in finite_datetimes if d not in done]


class RangeDaily(_BulkChecked, RangeDailyBase):
    """Every missing day of the window (``luigi --module m RangeDaily --of Task --start 2024-01-01``)."""

    datetime_pattern = "(%Y).*(%m).*(%d)"


class RangeHourly(_BulkChecked, RangeHourlyBase):
    """Every missing hour of the window (``--start 2024-01-01T00``)."""

    datetime_pattern = "(%Y).*(%m).*(%d).*(%H)"


class RangeByMinutes(_BulkChecked, RangeByMinutesBase):
    """Every missing period of ``minutes_interval`` minutes of the window (``--start 2024-01-01T0000``)."""

    datetime_pattern = "(%Y).*(%m).*(%d).*(%H).*(%M)"


# --- finding complete periods by listing folders ---------------------------------------------
def _digit_class(digits: Sequence[str]) -> str:
    """``[3-7]`` for a run of consecutive digits, else ``[0125]``."""
    ordered = sorted(digits)
    if len(ordered) > 1 and ord(ordered[-1]) - ord(ordered[0]) == len(ordered) - 1:
        return f"[{ordered[0]}-{ordered[-1]}]"
    return f"[{''.join(ordered)}]"


def _constrain_glob(glob: str, paths: Sequence[str], limit: int = 5) -> list[str]:
    """Narrower globs that together still match every one of ``paths``: the leftmost ``[0-9]``
    becomes each digit the paths have there (one glob per digit), again and again while there
    are at most ``limit`` of them; past that, the next ``[0-9]`` becomes the set of digits the
    paths have there. Fewer, narrower listings of a long history."""
    groups: dict[str, list[str]] = {glob: list(paths) if not isinstance(paths, str) else [paths]}
    while groups:
        pos = next(iter(groups)).find(_DIGIT)
        if pos < 0:
            return list(groups)
        digits = {g: sorted({path[pos] for path in members}) for g, members in groups.items()}
        if sum(len(d) for d in digits.values()) > limit:
            return [g.replace(_DIGIT, _digit_class(digits[g]), 1) for g in groups]
        groups = {
            g.replace(_DIGIT, digit, 1): [path for path in members if path[pos] == digit]
            for g, members in groups.items()
            for digit in digits[g]
        }
    return []


def _location_glob(tasks: Sequence[Any], outputs: Sequence[Any], regexes: Sequence[re.Pattern[str]]) -> str:
    """The folder glob of one output location: the first sample path with each group of the
    period's digits (where most samples have it) turned into ``[0-9]``s, its last part cut."""
    paths = [o.path for o in outputs]
    matches = []
    for regex, path, task in zip(regexes, paths, tasks, strict=True):
        match = regex.search(path)
        if match is None:
            raise NotImplementedError(f"Couldn't deduce datehour representation in output path {path!r} of task {task}")
        matches.append(match)
    chars = list(paths[0])
    for group in range(1, len(matches[0].groups()) + 1):
        (begin, end), _count = Counter(m.span(group) for m in matches).most_common(1)[0]
        chars[begin:end] = [_DIGIT] * (end - begin)
    return "".join(chars).rsplit("/", 1)[0]


def _get_filesystems_and_globs(
    datetime_to_task: Callable[[dt.datetime], Any], datetime_to_re: Callable[[dt.datetime], str]
) -> Iterator[tuple[Any, str]]:
    """One ``(file system, folder glob)`` per output of the task (a wrapper task's outputs are
    those of what it requires), worked out from the tasks of sample dates whose digits are
    unlikely to appear in a path by accident. Raises ``NotImplementedError`` when the outputs
    are not file-system targets or their number changes with the date."""
    samples = [
        dt.datetime(year, month, day, hour)
        for year in range(2000, 2050, 10)
        for month in range(1, 4)
        for day in range(5, 8)
        for hour in range(21, 24)
    ]
    regexes = [re.compile(datetime_to_re(d)) for d in samples]
    tasks = [datetime_to_task(d) for d in samples]
    outputs = [flatten_output(t) for t in tasks]
    for found, task in zip(outputs, tasks, strict=True):
        if len(found) != len(outputs[0]):
            raise NotImplementedError(
                f"Outputs must be consistent over time, sorry; was {found!r} for {task!r} and "
                f"{outputs[0]!r} for {tasks[0]!r}"
            )
        for target in found:
            if not isinstance(target, FileSystemTarget):
                raise NotImplementedError(
                    f"Output targets must be instances of FileSystemTarget; was {target!r} for {task!r}"
                )
    for location in zip(*outputs, strict=True):
        yield location[0].fs, _location_glob(tasks, location, regexes)


def _list_existing(filesystem: Any, glob: str, paths: Sequence[str]) -> set[str]:
    """The paths that exist under the folders ``glob`` (narrowed to ``paths``) matches."""
    began = time.monotonic()
    globs = sorted(_constrain_glob(glob, paths))
    listing: set[str] = set()
    for each in globs:
        logger.debug("Listing %s", each)
        if filesystem.exists(each):
            listing.update(filesystem.listdir(each))
    logger.debug("%d %s listings took %f s to return %d items", len(globs), type(filesystem).__name__,
                 time.monotonic() - began, len(listing))  # fmt: skip
    return listing


def infer_bulk_complete_from_fs(
    datetimes: Sequence[dt.datetime],
    datetime_to_task: Callable[[dt.datetime], Any],
    datetime_to_re: Callable[[dt.datetime], str],
) -> list[dt.datetime]:
    """The periods whose task lacks an output, found by listing folders instead of checking
    every output: for tasks whose output paths are built with ``strftime`` from the period and
    that keep the usual ``complete()``."""
    locations = _get_filesystems_and_globs(datetime_to_task, datetime_to_re)
    paths = [[o.path for o in flatten_output(datetime_to_task(d))] for d in datetimes]
    existing: set[str] = set()
    for (filesystem, glob), wanted in zip(locations, zip(*paths, strict=False), strict=False):
        existing |= _list_existing(filesystem, glob, wanted)
    return [d for d, own in zip(datetimes, paths, strict=True) if not set(own) <= existing]


__all__ = [
    "RangeBase",
    "RangeByMinutes",
    "RangeByMinutesBase",
    "RangeDaily",
    "RangeDailyBase",
    "RangeEvent",
    "RangeHourly",
    "RangeHourlyBase",
    "RangeMonthly",
    "infer_bulk_complete_from_fs",
]
