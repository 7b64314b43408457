"""Which scheduled runs are due: a pure function of a flow's schedule, its history and the time.

The scheduler calls ``due_runs`` for each unpaused flow once per tick. It returns the data
intervals to create runs for, oldest first: with catchup every missed interval since the
start date (or the last scheduled run), without it only the latest complete one; never more
than the flow's ``max_active_runs`` allows, never past its end date, and never an interval
that has not ended yet (a run for ``[start, end)`` is due once ``end`` has passed, as in
Airflow).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ductwork.core.graph import FlowMeta
from ductwork.core.schedule import DataInterval, Schedule, parse_schedule

_MAX_PER_TICK = 1000
"""A guard against a start date in the distant past creating unbounded runs in one tick."""


@dataclass(frozen=True)
class ScheduleState:
    """What the store knows about a flow's scheduling history."""

    last_interval: DataInterval | None
    active_runs: int


def schedule_of(meta: FlowMeta) -> Schedule:
    return parse_schedule(None if meta.schedule == "None" else meta.schedule, meta.timezone)


def _datetime(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def due_runs(meta: FlowMeta, state: ScheduleState, now: dt.datetime) -> list[DataInterval]:
    """The intervals to create scheduled runs for now."""
    schedule = schedule_of(meta)
    budget = max(0, meta.max_active_runs - state.active_runs)
    start_date, end_date = _datetime(meta.start_date), _datetime(meta.end_date)
    out: list[DataInterval] = []
    last = state.last_interval
    while len(out) < min(budget, _MAX_PER_TICK):
        interval = schedule.next_interval(last, start_date=start_date, end_date=end_date, catchup=meta.catchup, now=now)
        if interval is None or (last is not None and interval.start <= last.start):
            break
        if schedule.run_after(interval) > now:  # the rule the flows page shows ("Run After")
            break
        out.append(interval)
        last = interval
    return out


def next_run_after(meta: FlowMeta, last: DataInterval | None, now: dt.datetime) -> DataInterval | None:
    """The next interval the scheduler will create a run for (shown in the UI and CLI)."""
    schedule = schedule_of(meta)
    return schedule.next_interval(
        last,
        start_date=_datetime(meta.start_date),
        end_date=_datetime(meta.end_date),
        catchup=meta.catchup,
        now=now,
    )


def backfill_intervals(
    meta: FlowMeta, start: dt.datetime, end: dt.datetime, now: dt.datetime, *, limit: int | None = None
) -> list[DataInterval]:
    """Every interval whose logical date falls within ``[start, end]`` (the first ``limit``).

    A flow without a schedule backfills one run per day, so ``backfill`` is still useful for
    it.
    """
    schedule = schedule_of(meta)
    intervals = schedule.intervals_between(start, end, now=now, limit=limit)
    if intervals or meta.schedule not in ("None", "@once"):
        return intervals
    daily = parse_schedule("@daily", meta.timezone)
    return daily.intervals_between(start, end, now=now, limit=limit)
