"""Due runs: catchup, max_active_runs, start/end dates, @once, and DST in a local timezone."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ductwork.core.graph import FlowMeta
from ductwork.core.schedule import DataInterval
from ductwork.engine.scheduling import ScheduleState, backfill_intervals, due_runs, next_run_after

UTC = dt.UTC
MADRID = ZoneInfo("Europe/Madrid")


def meta(**kw: object) -> FlowMeta:
    base: dict[str, object] = {"flow_id": "f", "schedule": "@daily", "start_date": "2024-01-01T00:00:00+00:00"}
    base.update(kw)
    return FlowMeta(**base)  # type: ignore[arg-type]


def simulate(m: FlowMeta, until: dt.datetime, step: dt.timedelta) -> list[DataInterval]:
    """Tick the scheduler every ``step`` until ``until``; runs finish at once."""
    created: list[DataInterval] = []
    now = dt.datetime.fromisoformat(m.start_date or "2024-01-01T00:00:00+00:00")
    while now <= until:
        state = ScheduleState(created[-1] if created else None, active_runs=0)
        created += due_runs(m, state, now)
        now += step
    return created


def test_catchup_creates_every_missed_interval_oldest_first() -> None:
    now = dt.datetime(2024, 1, 5, 12, tzinfo=UTC)
    runs = due_runs(meta(catchup=True), ScheduleState(None, 0), now)
    assert [r.start.day for r in runs] == [1, 2, 3, 4]
    assert all(r.end <= now for r in runs)


def test_without_catchup_only_the_latest_complete_interval() -> None:
    now = dt.datetime(2024, 1, 5, 12, tzinfo=UTC)
    runs = due_runs(meta(catchup=False), ScheduleState(None, 0), now)
    assert [(r.start.day, r.end.day) for r in runs] == [(4, 5)]


def test_max_active_runs_limits_creation() -> None:
    now = dt.datetime(2024, 1, 10, tzinfo=UTC)
    assert len(due_runs(meta(catchup=True, max_active_runs=3), ScheduleState(None, 1), now)) == 2


def test_end_date_and_not_yet_ended_intervals() -> None:
    now = dt.datetime(2024, 1, 10, tzinfo=UTC)
    runs = due_runs(meta(catchup=True, end_date="2024-01-03T00:00:00+00:00"), ScheduleState(None, 0), now)
    assert [r.start.day for r in runs] == [1, 2, 3]
    assert due_runs(meta(start_date="2024-01-10T00:00:00+00:00"), ScheduleState(None, 0), now) == []


def test_once_and_none() -> None:
    now = dt.datetime(2024, 1, 10, tzinfo=UTC)
    once = due_runs(meta(schedule="@once"), ScheduleState(None, 0), now)
    assert len(once) == 1
    assert due_runs(meta(schedule="@once"), ScheduleState(once[0], 0), now) == []
    assert due_runs(meta(schedule="None"), ScheduleState(None, 0), now) == []


def test_daily_in_madrid_across_march_and_october_gets_one_run_per_day_at_local_midnight() -> None:
    m = meta(schedule="@daily", timezone="Europe/Madrid", start_date="2024-03-28T00:00:00+01:00", catchup=False)
    runs = simulate(m, dt.datetime(2024, 11, 2, tzinfo=UTC), dt.timedelta(hours=1))
    local = [r.start.astimezone(MADRID) for r in runs]
    days = [d.date() for d in local]
    assert days == sorted(set(days)), "exactly one run per day"
    assert days[0] == dt.date(2024, 3, 28) and days[-1] == dt.date(2024, 11, 1)
    assert len(days) == (days[-1] - days[0]).days + 1
    assert all((d.hour, d.minute) == (0, 0) for d in local)
    by_day = {r.start.astimezone(MADRID).date(): r for r in runs}
    assert by_day[dt.date(2024, 3, 31)].end - by_day[dt.date(2024, 3, 31)].start == dt.timedelta(hours=23)
    assert by_day[dt.date(2024, 10, 27)].end - by_day[dt.date(2024, 10, 27)].start == dt.timedelta(hours=25)


@given(st.sampled_from(["@hourly", "@daily", "*/20 * * * *", "2h", "0 9 * * 1-5"]), st.integers(1, 20))
def test_intervals_never_overlap_and_never_repeat(schedule: str, hours: int) -> None:
    m = meta(schedule=schedule, catchup=True)
    runs = simulate(m, dt.datetime(2024, 1, 3, tzinfo=UTC), dt.timedelta(hours=hours))
    for a, b in itertools.pairwise(runs):
        assert a.end <= b.start
    assert len({r.start for r in runs}) == len(runs)


def test_backfill_and_next_run() -> None:
    m = meta(schedule="@daily")
    start, end = dt.datetime(2024, 2, 1, tzinfo=UTC), dt.datetime(2024, 2, 3, tzinfo=UTC)
    assert [i.start.day for i in backfill_intervals(m, start, end, now=end)] == [1, 2, 3]
    assert [i.start.day for i in backfill_intervals(meta(schedule="None"), start, end, now=end)] == [1, 2, 3]
    nxt = next_run_after(m, None, dt.datetime(2024, 2, 5, 10, tzinfo=UTC))
    assert nxt is not None and nxt.start == dt.datetime(2024, 2, 4, tzinfo=UTC)  # catchup off: latest complete
