"""Luigi's ranges: build a dated task for every day (or hour) of a window whose output is missing.

``RangeDaily(of=Report, start=date(2024, 1, 1), stop=date(2024, 2, 1))`` requires
``Report(date=d)`` for each day ``d`` of January whose targets do not exist yet; with no
``start``/``stop`` the window is ``days_back`` days before ``now`` up to ``days_forward`` after.
From the command line: ``ductwork build RangeDaily --of Report --start 2024-01-01 --stop 2024-02-01``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from ductwork.core.params import (
    BoolParameter,
    DateParameter,
    DateTimeParameter,
    DictParameter,
    IntParameter,
    Parameter,
)
from ductwork.core.task import Task, WrapperTask
from ductwork.errors import DefinitionError, did_you_mean


class TaskClassParameter(Parameter[str]):
    """A task class, given as the class itself in code or its family name on the command line."""

    type_name = "task_class"

    def normalize(self, value: Any) -> str:
        if isinstance(value, type) and issubclass(value, Task):
            return value.get_task_family()
        return super().normalize(value)


class _RangeBase(WrapperTask):
    of = TaskClassParameter(description="the task class to build for each date")
    of_params = DictParameter(default={}, description="other parameters of that task")
    param_name: Parameter[str] = Parameter(
        default=None, description="its date parameter (default: the first date-like one)"
    )
    reverse = BoolParameter(default=False, description="newest first")
    task_limit = IntParameter(default=50, description="at most this many tasks per build")
    now = DateTimeParameter(default=None, significant=False, description="the current time (for tests)")

    def of_class(self) -> type[Task]:
        from ductwork.core.class_flow import find_task_class

        return find_task_class(self.of)

    def _date_param(self, cls: type[Task]) -> str:
        if self.param_name:
            if self.param_name not in cls.declared_params():
                raise DefinitionError(
                    f"{type(self).__name__}: {cls.__name__} has no parameter {self.param_name!r}."
                    f"{did_you_mean(self.param_name, cls.declared_params())}"
                )
            return str(self.param_name)
        for name, param in cls.declared_params().items():
            if isinstance(param, DateParameter | DateTimeParameter):
                return name
        raise DefinitionError(f"{type(self).__name__}: {cls.__name__} has no date parameter; give param_name")

    def _current(self) -> dt.datetime:
        return self.now or dt.datetime.now(dt.UTC)

    def moments(self) -> Iterator[Any]:
        raise NotImplementedError

    def requires(self) -> list[Task]:
        cls = self.of_class()
        name = self._date_param(cls)
        missing = []
        moments = list(self.moments())
        if self.reverse:
            moments.reverse()
        for moment in moments:
            task = cls(**{**dict(self.of_params), name: moment})
            if not task.complete():
                missing.append(task)
            if len(missing) >= self.task_limit:
                break
        return missing


class RangeDaily(_RangeBase):
    """Every day in ``[start, stop)`` (or the last ``days_back`` days) whose task is incomplete."""

    start = DateParameter(default=None)
    stop = DateParameter(default=None, description="exclusive")
    days_back = IntParameter(default=100)
    days_forward = IntParameter(default=0)

    def moments(self) -> Iterator[dt.date]:
        today = self._current().date()
        first = self.start or today - dt.timedelta(days=self.days_back)
        last = self.stop or today + dt.timedelta(days=self.days_forward)
        day = first
        while day < last:
            yield day
            day += dt.timedelta(days=1)


class RangeHourly(_RangeBase):
    """Every hour in ``[start, stop)`` (or the last ``hours_back`` hours) whose task is incomplete."""

    start = DateTimeParameter(default=None)
    stop = DateTimeParameter(default=None, description="exclusive")
    hours_back = IntParameter(default=100 * 24)
    hours_forward = IntParameter(default=0)

    def moments(self) -> Iterator[dt.datetime]:
        now = self._current().replace(minute=0, second=0, microsecond=0)
        first = (self.start or now - dt.timedelta(hours=self.hours_back)).replace(minute=0, second=0, microsecond=0)
        last = self.stop or now + dt.timedelta(hours=self.hours_forward)
        moment = first
        while moment < last:
            yield moment
            moment += dt.timedelta(hours=1)
