"""A date chosen by hand for an AWS Data Pipeline definition (``ductwork run --date``, ``ductwork
trigger --date``, ``ductwork backfill``) is one of its schedule's instances: AWS has instances only
on the schedule's boundaries, so every ``@scheduledStartTime`` an object sees is one of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Cli


def _definition(kind: str, seen: Path) -> dict[str, object]:
    default: dict[str, object] = {"id": "Default", "scheduleType": kind}
    objects: list[dict[str, object]] = [
        default,
        {
            "id": "Say",
            "type": "ShellCommandActivity",
            "command": f"echo #{{@scheduledStartTime}}/#{{@scheduledEndTime}} > {seen}",
        },
    ]
    if kind != "ondemand":
        default["schedule"] = {"ref": "Daily"}
        objects.append(
            {
                "id": "Daily",
                "type": "Schedule",
                "period": "1 days",
                "startDateTime": "2024-01-01T06:00:00",
                "endDateTime": "2024-03-01T06:00:00",
            }
        )
    return {"objects": objects}


@pytest.mark.parametrize(
    ("kind", "date", "scheduled"),
    [
        # the period that holds 12:00 on the 31st is the one that starts at 06:00 that day
        ("timeseries", "2024-01-31T12:00:00", "2024-01-31T06:00:00/2024-02-01T06:00:00"),
        ("timeseries", "2024-01-31", "2024-01-30T06:00:00/2024-01-31T06:00:00"),
        ("timeseries", "2024-01-31T06:00:00", "2024-01-31T06:00:00/2024-02-01T06:00:00"),
        # a cron-style instance starts when its run's interval ends (README, Tutorial 4)
        ("cron", "2024-01-31T12:00:00", "2024-02-01T06:00:00/2024-02-02T06:00:00"),
        # an on-demand pipeline has no schedule: its run is at the date given
        ("ondemand", "2024-01-31T12:00:00", "2024-01-31T12:00:00/2024-01-31T12:00:00"),
    ],
)
def test_run_date_between_two_instances_runs_the_instance_whose_period_holds_it(
    cli: Cli, tmp_path: Path, kind: str, date: str, scheduled: str
) -> None:
    seen = tmp_path / "seen.txt"
    (tmp_path / "p.json").write_text(json.dumps(_definition(kind, seen)))
    result = cli("run", "p.json", "--date", date, "--no-progress", "--json")
    assert result.exit_code == 0, result.output
    assert seen.read_text().strip() == scheduled
    moved = f"--date {date if 'T' in date else date + 'T00:00:00'}+00:00 falls between two instances" in result.output
    on_boundary = kind == "ondemand" or date.endswith("T06:00:00")
    assert moved is not on_boundary, result.output


@pytest.mark.parametrize(
    ("date", "says"),
    [
        ("2023-12-31T12:00:00", "the first run of its schedule, the instance scheduled at its startDateTime, has "
         "the logical date 2024-01-01T06:00:00+00:00"),
        ("2024-03-02", "the last run of its schedule has the logical date 2024-02-29T06:00:00+00:00"),
    ],
)  # fmt: skip
def test_run_date_outside_the_schedule_is_refused_naming_its_first_or_last_instance(
    cli: Cli, tmp_path: Path, date: str, says: str
) -> None:
    seen = tmp_path / "seen.txt"
    (tmp_path / "p.json").write_text(json.dumps(_definition("timeseries", seen)))
    result = cli("run", "p.json", "--date", date, "--no-progress")
    assert result.exit_code == 2
    assert "pipeline 'p' has no instance then" in result.output and says in result.output
    assert not seen.exists()


def test_trigger_and_backfill_of_a_stored_pipeline_use_its_schedule_boundaries(cli: Cli, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "p.json").write_text(json.dumps(_definition("timeseries", tmp_path / "seen.txt")))
    made = cli("trigger", "p", "--date", "2024-02-05T12:00:00", "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["run_id"] == "manual__2024-02-05T06:00:00+00:00"
    early = cli("trigger", "p", "--date", "2023-06-01")
    assert early.exit_code == 2 and "pipeline 'p' has no instance then" in early.output
    planned = cli("backfill", "p", "--start", "2024-01-10", "--end", "2024-01-12", "--dry-run", "--json")
    assert planned.exit_code == 0, planned.output
    assert [p["run_id"] for p in json.loads(planned.output)] == [
        "backfill__2024-01-10T06:00:00+00:00",
        "backfill__2024-01-11T06:00:00+00:00",
    ]


def test_an_instance_that_has_a_run_is_not_triggered_again(cli: Cli, tmp_path: Path) -> None:
    """A trigger at another time of a period whose instance had run (scheduled, backfilled or
    triggered) made a second run of that one instance: with ``--run-id``, silently; without, the
    error said to choose another run id, which then did. AWS has one instance per period, re-run
    (``tasks clear``), never doubled."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "p.json").write_text(json.dumps(_definition("timeseries", tmp_path / "seen.txt")))
    assert cli("backfill", "p", "--start", "2024-01-10", "--end", "2024-01-10T12:00:00").exit_code == 0
    again = cli("trigger", "p", "--date", "2024-01-10T18:00:00", "--run-id", "again")
    assert again.exit_code != 0, again.output
    assert (
        "pipeline 'p' already has a run for the logical date 2024-01-10T06:00:00+00:00 (the instance of the schedule "
        "that 2024-01-10T18:00:00+00:00 falls in): backfill__2024-01-10T06:00:00+00:00 (queued)"
    ) in again.output
    assert "ductwork tasks clear p backfill__2024-01-10T06:00:00+00:00" in again.output
    first = cli("trigger", "p", "--date", "2024-02-05T12:00:00")
    assert first.exit_code == 0, first.output
    second = cli("trigger", "p", "--date", "2024-02-05T07:00:00")
    assert "already has a run for the logical date 2024-02-05T06:00:00+00:00" in second.output, second.output
    listed = json.loads(cli("runs", "list", "p", "--json").output)
    assert sorted(r["run_id"] for r in listed["runs"]) == [
        "backfill__2024-01-10T06:00:00+00:00",
        "manual__2024-02-05T06:00:00+00:00",
    ]
