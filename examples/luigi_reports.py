"""A Luigi-style pipeline: class tasks with a date parameter, file targets and a wrapper task.

Build it (a second build runs nothing, because every target exists):

    ductwork build --module examples/luigi_reports.py AllReports --date 2024-01-31

Or let the scheduler run it daily: ``luigi_reports_daily`` below is a scheduled flow.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections import Counter
from pathlib import Path

from ductwork import (
    Config,
    DateParameter,
    Flow,
    IntParameter,
    LocalTarget,
    Parameter,
    PathParameter,
    Task,
    WrapperTask,
)

REGIONS = ("north", "south", "east", "west")


class ReportConfig(Config):
    """Where the reports go: --ReportConfig-output-dir, DUCTWORK_REPORTCONFIG_OUTPUT_DIR or ductwork.toml."""

    output_dir = PathParameter(default=Path("demo-output/luigi"), description="root of every output file")


class DailyEvents(Task):
    """The raw events of one day (generated here; in real life an export from a source system)."""

    date = DateParameter()

    def output(self) -> LocalTarget:
        return LocalTarget(ReportConfig().output_dir / "events" / f"{self.date}.csv")

    def run(self) -> None:
        rng = random.Random(self.date.toordinal())
        with self.output().open("w") as fh:
            writer = csv.writer(fh)
            writer.writerow(["region", "kind", "amount"])
            for _ in range(200):
                writer.writerow([rng.choice(REGIONS), rng.choice(["view", "click", "buy"]), rng.randint(1, 100)])


class RegionReport(Task):
    """Totals of one region on one day."""

    date = DateParameter()
    region = Parameter()

    def requires(self) -> DailyEvents:
        return DailyEvents(date=self.date)

    def output(self) -> LocalTarget:
        return LocalTarget(ReportConfig().output_dir / "regions" / str(self.date) / f"{self.region}.txt")

    def run(self) -> None:
        kinds: Counter[str] = Counter()
        with self.input().open("r") as fh:
            for row in csv.DictReader(fh):
                if row["region"] == self.region:
                    kinds[row["kind"]] += int(row["amount"])
        with self.output().open("w") as out:
            for kind, total in sorted(kinds.items()):
                out.write(f"{kind}\t{total}\n")


class DailySummary(Task):
    """All regions of one day in one file."""

    date = DateParameter()
    priority = 10

    def requires(self) -> dict[str, RegionReport]:
        return {region: RegionReport(date=self.date, region=region) for region in REGIONS}

    def output(self) -> LocalTarget:
        return LocalTarget(ReportConfig().output_dir / "summaries" / f"{self.date}.txt")

    def run(self) -> None:
        with self.output().open("w") as out:
            out.write(f"summary for {self.date}\n")
            for region, target in self.input().items():
                out.write(f"[{region}]\n{target.read_text()}")


class AllReports(WrapperTask):
    """The summaries of the last ``days`` days up to ``date``."""

    date = DateParameter(default=dt.date(2024, 1, 31))
    days = IntParameter(default=3, description="how many days back")

    def requires(self) -> list[DailySummary]:
        return [DailySummary(date=self.date - dt.timedelta(days=i)) for i in range(self.days)]


luigi_reports_daily = Flow.from_task(
    AllReports,
    flow_id="luigi_reports_daily",
    schedule="@daily",
    date_param="date",
    start_date="2024-01-01",
    tags=["example", "luigi"],
)
