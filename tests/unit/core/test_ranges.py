"""RangeDaily and RangeHourly build only the dates whose targets are missing."""

from __future__ import annotations

import datetime as dt

from ductwork import DateParameter, DateTimeParameter, MemoryTarget, Parameter, RangeDaily, RangeHourly, Task
from ductwork.testing import build


class Daily(Task):
    date = DateParameter()
    region = Parameter(default="eu")

    def output(self) -> MemoryTarget:
        return MemoryTarget(f"daily-{self.region}-{self.date}")

    def run(self) -> None:
        self.output().write_text("x")


class Hourly(Task):
    hour = DateTimeParameter()

    def output(self) -> MemoryTarget:
        return MemoryTarget(f"hourly-{self.hour:%Y%m%d%H}")

    def run(self) -> None:
        self.output().write_text("x")


def test_range_daily_skips_dates_whose_targets_exist() -> None:
    MemoryTarget("daily-us-2024-01-03").write_text("already there")
    rng = RangeDaily(of=Daily, of_params={"region": "us"}, start="2024-01-01", stop="2024-01-06")
    assert [t.date.day for t in rng.requires()] == [1, 2, 4, 5]
    result = build(rng)
    assert result.state == "success"
    assert "Daily(date=2024-01-03, region=us)" not in result.tasks
    assert len([t for t in result.tasks if t.startswith("Daily(")]) == 4
    assert RangeDaily(of=Daily, of_params={"region": "us"}, start="2024-01-01", stop="2024-01-06").complete()


def test_range_daily_relative_window_reverse_and_limit() -> None:
    now = dt.datetime(2024, 3, 10, 12, tzinfo=dt.UTC)
    rng = RangeDaily(of="Daily", days_back=5, reverse=True, task_limit=2, now=now)
    assert [t.date.day for t in rng.requires()] == [9, 8]


def test_range_hourly() -> None:
    rng = RangeHourly(of=Hourly, start="2024-01-01T22:00:00+00:00", stop="2024-01-02T02:00:00+00:00")
    assert [t.hour.hour for t in rng.requires()] == [22, 23, 0, 1]
    assert build(rng).state == "success"
    assert rng.complete()
