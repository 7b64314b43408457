"""``airflow.timetables.base``: ``Timetable``, ``DataInterval``, ``DagRunInfo``, ``TimeRestriction``.

``dag.timetable`` is one of the timetables here and in ``simple``/``interval``/``trigger``, so DAG
integrity tests that read ``dag.timetable.summary`` or ask ``next_dagrun_info`` get Airflow's
answers, computed by the Ductwork schedule the DAG runs on. A DAG file's own subclass of
``Timetable`` (a custom timetable) imports, and the DAG that uses it is refused when the file is
loaded, naming the file and line: Ductwork's scheduler never runs DAG code to plan runs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple


class DataInterval(NamedTuple):
    start: Any
    end: Any

    @classmethod
    def exact(cls, at: Any) -> DataInterval:
        return cls(at, at)


class TimeRestriction(NamedTuple):
    earliest: Any
    latest: Any
    catchup: bool


class DagRunInfo(NamedTuple):
    run_after: Any
    data_interval: DataInterval

    @classmethod
    def exact(cls, at: Any) -> DagRunInfo:
        return cls(run_after=at, data_interval=DataInterval.exact(at))

    @classmethod
    def interval(cls, start: Any, end: Any) -> DagRunInfo:
        return cls(run_after=end, data_interval=DataInterval(start, end))

    @property
    def logical_date(self) -> Any:
        return self.data_interval.start


class Timetable:
    """Airflow's timetable protocol. Ductwork's built-in timetables define
    ``ductwork_schedule()`` (what ``DAG(schedule=...)`` becomes); a subclass without it is a
    custom timetable, which a DAG refuses."""

    description: str = ""
    periodic: bool = True
    can_be_scheduled: bool = True
    run_ordering: tuple[str, ...] = ("data_interval_end", "execution_date")
    active_runs_limit: int | None = None

    @property
    def summary(self) -> str:
        return type(self).__name__

    def validate(self) -> None:
        """Nothing to check beyond what the DAG checks when it is loaded."""

    def serialize(self) -> dict[str, Any]:
        return {}

    def _schedule(self) -> Any:
        """The Ductwork schedule this timetable is (see ``ductwork_schedule``)."""
        from ductwork.core.schedule import parse_schedule

        as_schedule = getattr(self, "ductwork_schedule", None)
        if as_schedule is None:
            raise NotImplementedError(f"{type(self).__name__} is a custom timetable, which Ductwork does not run")
        return parse_schedule(as_schedule(), getattr(self, "_tz", None) or "UTC")

    def infer_manual_data_interval(self, *, run_after: Any) -> DataInterval:
        """The interval of a run triggered at ``run_after``: Ductwork's rule (the interval that
        starts then, README's "What differs"), not Airflow's last complete interval."""
        from .._dag_run import to_pendulum

        interval = self._schedule().manual_interval(_aware(run_after))
        return DataInterval(to_pendulum(interval.start), to_pendulum(interval.end))

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        """The next scheduled run after ``last_automated_data_interval`` within ``restriction``,
        as Ductwork's scheduler plans it; ``None`` when there is none."""
        from ductwork.core.schedule import DataInterval as Interval

        from .._dag_run import to_pendulum

        schedule = self._schedule()
        last = last_automated_data_interval
        nxt = schedule.next_interval(
            None if last is None else Interval(_aware(last.start), _aware(last.end)),
            start_date=None if restriction.earliest is None else _aware(restriction.earliest),
            end_date=None if restriction.latest is None else _aware(restriction.latest),
            catchup=restriction.catchup,
            now=dt.datetime.now(dt.UTC),
        )
        if nxt is None:
            return None
        interval = DataInterval(to_pendulum(nxt.start), to_pendulum(nxt.end))
        return DagRunInfo(run_after=to_pendulum(schedule.run_after(nxt)), data_interval=interval)

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        return self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.serialize().items()))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary!r})"


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


__all__ = ["DagRunInfo", "DataInterval", "TimeRestriction", "Timetable"]
