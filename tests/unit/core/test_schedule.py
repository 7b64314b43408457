"""Schedules parse, refuse bad input clearly, and produce DST-correct data intervals."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ductwork.core.schedule import (
    CronSchedule,
    DataInterval,
    DeltaSchedule,
    NoSchedule,
    OnceSchedule,
    parse_schedule,
)
from ductwork.errors import ScheduleError

MADRID = ZoneInfo("Europe/Madrid")


@pytest.mark.parametrize(
    "value, kind",
    [
        (None, NoSchedule),
        ("@once", OnceSchedule),
        ("@daily", CronSchedule),
        ("*/5 * * * *", CronSchedule),
        (dt.timedelta(hours=2), DeltaSchedule),
        ("1h30m", DeltaSchedule),
        ("None", NoSchedule),
    ],
)
def test_parse(value: object, kind: type) -> None:
    assert isinstance(parse_schedule(value), kind)


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("@dayly", "Did you mean one of '@daily'"),
        ("61 * * * *", "invalid schedule '61 * * * *'"),
        ("every day", "cron"),
        (42, "invalid schedule 42"),
        (dt.timedelta(0), "positive"),
        ("0 0 31 2 *", "no date matches it, so it would never run"),
        ("0 0 30 2 *", "never run"),
        ("inf", "invalid schedule 'inf'"),  # was an OverflowError traceback
        ("1e20", "too large for a duration"),
    ],
)
def test_bad_schedules_name_the_flow_and_value(value: object, fragment: str) -> None:
    with pytest.raises(ScheduleError) as err:
        parse_schedule(value, where="flow 'etl'")
    assert str(err.value).startswith("flow 'etl': ")
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("61 * * * *", "its minute field '61' is not valid (it takes 0-59)"),
        ("0 25 * * *", "its hour field '25' is not valid (it takes 0-23)"),
        ("0 0 32 * *", "its day-of-month field '32' is not valid (it takes 1-31)"),
        ("0 0 * 13 *", "its month field '13' is not valid (it takes 1-12 or JAN-DEC)"),
        ("0 0 * * 8", "its day-of-week field '8' is not valid (it takes 0-6 or SUN-SAT)"),
        ("*/0 * * * *", "its minute field '*/0' is not valid"),
    ],
)
def test_a_bad_cron_expression_names_its_bad_field(value: str, fragment: str) -> None:
    """It said "not a valid cron expression" alone: which of five fields was wrong was left to find."""
    with pytest.raises(ScheduleError) as err:
        parse_schedule(value, where="flow 'etl'")
    assert f"flow 'etl': invalid schedule {value!r}: not a valid cron expression: {fragment}" in str(err.value)


def test_daily_in_madrid_across_both_dst_changes_runs_once_a_day_at_local_midnight() -> None:
    schedule = parse_schedule("@daily", "Europe/Madrid")
    start = dt.datetime(2024, 3, 28, tzinfo=MADRID)
    end = dt.datetime(2024, 11, 2, tzinfo=MADRID)
    intervals = schedule.intervals_between(start, end, now=end + dt.timedelta(days=2))
    days = [i.start.astimezone(MADRID) for i in intervals]
    assert len(days) == (end.date() - start.date()).days + 1
    assert all(d.hour == 0 and d.minute == 0 for d in days)
    assert len({d.date() for d in days}) == len(days)
    utc = dt.UTC
    lengths = {i.start.astimezone(MADRID).date(): i.end.astimezone(utc) - i.start.astimezone(utc) for i in intervals}
    assert lengths[dt.date(2024, 3, 31)] == dt.timedelta(hours=23)  # spring forward
    assert lengths[dt.date(2024, 10, 27)] == dt.timedelta(hours=25)  # fall back
    assert lengths[dt.date(2024, 6, 1)] == dt.timedelta(hours=24)


def test_cron_next_interval_catchup_and_no_catchup() -> None:
    schedule = parse_schedule("@daily")
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    now = dt.datetime(2024, 1, 10, 5, tzinfo=dt.UTC)
    first = schedule.next_interval(None, start_date=start, end_date=None, catchup=True, now=now)
    assert first == DataInterval(start, start + dt.timedelta(days=1))
    latest = schedule.next_interval(None, start_date=start, end_date=None, catchup=False, now=now)
    assert latest == DataInterval(dt.datetime(2024, 1, 9, tzinfo=dt.UTC), dt.datetime(2024, 1, 10, tzinfo=dt.UTC))


def test_end_date_stops_the_schedule() -> None:
    schedule = parse_schedule("@daily")
    last = DataInterval(dt.datetime(2024, 1, 5, tzinfo=dt.UTC), dt.datetime(2024, 1, 6, tzinfo=dt.UTC))
    assert (
        schedule.next_interval(
            last,
            start_date=None,
            end_date=dt.datetime(2024, 1, 5, 12, tzinfo=dt.UTC),
            catchup=True,
            now=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        )
        is None
    )


@given(st.integers(min_value=1, max_value=48), st.integers(min_value=0, max_value=400))
def test_delta_intervals_tile_time(hours: int, offset: int) -> None:
    schedule = DeltaSchedule(dt.timedelta(hours=hours))
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(hours=offset)
    now = start + dt.timedelta(days=10)
    a = schedule.next_interval(None, start_date=start, end_date=None, catchup=True, now=now)
    assert a is not None
    b = schedule.next_interval(a, start_date=start, end_date=None, catchup=True, now=now)
    assert b is not None and a.end == b.start and b.end - b.start == dt.timedelta(hours=hours)


def test_nonexistent_local_time_moves_past_the_gap() -> None:
    schedule = parse_schedule("30 2 * * *", "Europe/Madrid")
    day = dt.datetime(2024, 3, 30, 12, tzinfo=MADRID)
    interval = schedule.next_interval(None, start_date=day, end_date=None, catchup=True, now=day + dt.timedelta(days=3))
    assert interval is not None
    nxt = interval.start.astimezone(MADRID)  # 2024-03-31 02:30 does not exist in Madrid
    assert nxt.date() == dt.date(2024, 3, 31) and nxt.hour == 3


@given(st.timedeltas(min_value=dt.timedelta(seconds=1), max_value=dt.timedelta(days=4000)))
def test_a_timedelta_schedule_round_trips_through_its_text(delta: dt.timedelta) -> None:
    delta = dt.timedelta(seconds=delta.days * 86400 + delta.seconds)  # stored text keeps whole seconds
    text = parse_schedule(delta).text
    assert ":" not in text and isinstance(parse_schedule(text), DeltaSchedule)
    assert parse_schedule(text).delta == delta  # type: ignore[attr-defined]
    # rows stored by older releases hold str(timedelta): "6:00:00", "1 day, 6:00:00"
    assert parse_schedule(str(delta)).delta == delta  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("cron", "zone", "now", "expected_start"),
    [
        ("30 2 * * *", "America/New_York", "2026-03-08T09:00:00+00:00", "2026-03-07T07:30:00+00:00"),
        ("30 2 * * *", "Europe/Paris", "2026-03-29T03:00:00+00:00", "2026-03-28T01:30:00+00:00"),
        ("0 * * * *", "Europe/Paris", "2026-03-29T01:10:00+00:00", "2026-03-29T00:00:00+00:00"),
    ],
)
def test_without_catchup_the_interval_ending_at_a_spring_forward_is_not_lost(
    cron: str, zone: str, now: str, expected_start: str
) -> None:
    """The fire in the DST gap (02:30) lands on the interval's end: the interval before it was
    skipped, so a day (or an hour) had no run although the scheduler never stopped."""
    schedule = parse_schedule(cron, ZoneInfo(zone))
    moment = dt.datetime.fromisoformat(now)
    previous = schedule.interval_before(dt.datetime.fromisoformat(expected_start))
    assert previous is not None
    interval = schedule.next_interval(previous, start_date=None, end_date=None, catchup=False, now=moment)
    assert interval is not None
    assert interval.start == dt.datetime.fromisoformat(expected_start)
    assert interval.end <= moment


def test_a_six_field_cron_is_refused_rather_than_read_with_seconds() -> None:
    """ "0 0 * * * *" (hourly, to a Quartz user) ran every second of one minute a day."""
    with pytest.raises(ScheduleError, match="has 6"):
        parse_schedule("0 0 * * * *", where="flow 'q'")


def test_after_a_schedule_change_the_next_interval_is_aligned_to_the_new_cron() -> None:
    """From every 20 s to every 5 minutes: the next run started at 15:57:20, off the new cron."""
    schedule = parse_schedule("*/5 * * * *")
    last = DataInterval(
        dt.datetime(2026, 12, 6, 15, 57, tzinfo=dt.UTC), dt.datetime(2026, 12, 6, 15, 57, 20, tzinfo=dt.UTC)
    )
    now = dt.datetime(2026, 12, 6, 16, 10, tzinfo=dt.UTC)
    interval = schedule.next_interval(last, start_date=None, end_date=None, catchup=True, now=now)
    assert interval is not None and interval.start == dt.datetime(2026, 12, 6, 16, 0, tzinfo=dt.UTC)


def test_a_start_date_moved_forward_is_kept_after_earlier_runs() -> None:
    """Moving start_date past a gap skips it, as in Airflow (November was run anyway)."""
    daily = parse_schedule("@daily")
    last = DataInterval(dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    start = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    now = dt.datetime(2026, 12, 6, 16, tzinfo=dt.UTC)
    interval = daily.next_interval(last, start_date=start, end_date=None, catchup=True, now=now)
    assert interval is not None and interval.start == start
    every = parse_schedule(dt.timedelta(hours=6))
    moved = every.next_interval(last, start_date=start, end_date=None, catchup=True, now=now)
    assert moved is not None and moved.start == start


def test_the_interval_after_a_spring_forward_starts_where_the_last_ended() -> None:
    schedule = parse_schedule("30 2 * * *", ZoneInfo("America/New_York"))
    last = DataInterval(dt.datetime(2026, 3, 7, 7, 30, tzinfo=dt.UTC), dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.UTC))
    now = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    interval = schedule.next_interval(last, start_date=None, end_date=None, catchup=True, now=now)
    assert interval == DataInterval(last.end, dt.datetime(2026, 3, 9, 6, 30, tzinfo=dt.UTC))


def test_a_timedelta_schedule_without_catchup_keeps_the_start_dates_times() -> None:
    """README: every 6 hours from 03:00 runs at 03:00, 09:00... also with ``catchup=False``
    (Airflow counts those from 1970-01-01 instead: 00:00, 06:00...)."""
    schedule = parse_schedule(dt.timedelta(hours=6))
    start = dt.datetime(2024, 1, 1, 3, tzinfo=dt.UTC)
    now = dt.datetime(2024, 3, 1, 7, 35, tzinfo=dt.UTC)
    first = schedule.next_interval(None, start_date=start, end_date=None, catchup=False, now=now)
    assert first == DataInterval(dt.datetime(2024, 2, 29, 21, tzinfo=dt.UTC), dt.datetime(2024, 3, 1, 3, tzinfo=dt.UTC))
    assert schedule.next_interval(first, start_date=start, end_date=None, catchup=False, now=now) == DataInterval(
        dt.datetime(2024, 3, 1, 3, tzinfo=dt.UTC), dt.datetime(2024, 3, 1, 9, tzinfo=dt.UTC)
    )


@pytest.mark.parametrize("cron, per_hour", [("0 * * * *", 1), ("*/15 * * * *", 4), ("30 * * * *", 1)])
def test_an_hourly_cron_runs_every_hour_of_a_fall_back_night(cron: str, per_hour: int) -> None:
    """Hourly in Madrid: the night the clocks go back has 25 hours, and the second 02:00 (CET)
    had no run: the run of 02:00 CEST covered two hours. Every UTC hour gets its runs, as
    Airflow's timetables do for a cron that fires every hour (the "fold hour" fix)."""
    schedule = parse_schedule(cron, "Europe/Madrid")
    start = dt.datetime(2026, 10, 25, tzinfo=MADRID)
    end = dt.datetime(2026, 10, 25, 23, 59, tzinfo=MADRID)
    intervals = schedule.intervals_between(start, end, now=end + dt.timedelta(days=1))
    assert len(intervals) == 25 * per_hour
    step = dt.timedelta(minutes=60 // per_hour)
    assert all(i.end - i.start == step for i in intervals)
    assert all(a.end == b.start for a, b in itertools.pairwise(intervals))


def test_the_second_two_o_clock_of_a_fall_back_night_is_an_hourly_interval_of_its_own() -> None:
    schedule = parse_schedule("0 * * * *", "Europe/Madrid")
    first_two = dt.datetime(2026, 10, 25, 0, 0, tzinfo=dt.UTC)  # 02:00 CEST
    second_two = dt.datetime(2026, 10, 25, 1, 0, tzinfo=dt.UTC)  # 02:00 CET, an hour later
    three = dt.datetime(2026, 10, 25, 2, 0, tzinfo=dt.UTC)  # 03:00 CET
    assert schedule.interval_starting(first_two) == DataInterval(first_two, second_two)
    assert schedule.interval_starting(second_two) == DataInterval(second_two, three)
    assert schedule.interval_before(three) == DataInterval(second_two, three)
    assert schedule.logical_date_holding(second_two + dt.timedelta(minutes=30), start_date=None) == second_two
    assert schedule.manual_interval(three + dt.timedelta(minutes=5)) == DataInterval(second_two, three)


def test_an_hourly_cron_runs_every_hour_of_a_spring_forward_night_once() -> None:
    schedule = parse_schedule("0 * * * *", "Europe/Madrid")
    start = dt.datetime(2026, 3, 29, tzinfo=MADRID)
    end = dt.datetime(2026, 3, 29, 23, 59, tzinfo=MADRID)
    intervals = schedule.intervals_between(start, end, now=end + dt.timedelta(days=1))
    assert len(intervals) == 23
    assert all(i.end - i.start == dt.timedelta(hours=1) for i in intervals)


def test_a_daily_cron_at_a_repeated_time_runs_once_on_the_fall_back_day() -> None:
    """02:30 happens twice in Madrid on 2026-10-25; a daily 02:30 runs once, at the first."""
    schedule = parse_schedule("30 2 * * *", "Europe/Madrid")
    start = dt.datetime(2026, 10, 24, tzinfo=MADRID)
    end = dt.datetime(2026, 10, 26, 23, 0, tzinfo=MADRID)
    starts = [i.start for i in schedule.intervals_between(start, end, now=end + dt.timedelta(days=1))]
    assert starts == [
        dt.datetime(2026, 10, 24, 0, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 10, 26, 1, 30, tzinfo=dt.UTC),
    ]


def test_an_hourly_cron_on_weekdays_keeps_local_midnight_after_a_dst_weekend() -> None:
    """Every hour Monday to Friday: after the weekend the clocks went back, Monday starts at
    local midnight (the fold fix must not add the weekend's 49 wall-clock hours in UTC)."""
    schedule = parse_schedule("0 * * * 1-5", "Europe/Madrid")
    friday_last = dt.datetime(2026, 10, 23, 23, tzinfo=MADRID)
    interval = schedule.interval_starting(friday_last)
    assert interval.end == dt.datetime(2026, 10, 26, 0, tzinfo=MADRID)
