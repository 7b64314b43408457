"""Issue 9: bad input to the scheduler's commands is refused clearly, and definitions stored by
older releases still work (no scheduler needed)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Cli
from ductwork.core.flow import Flow
from ductwork.core.operators.empty import EmptyOperator
from ductwork.store import migrate
from ductwork.store.engine import create_engine, transaction
from ductwork.store.repo import flows as flow_repo


@pytest.mark.parametrize("value", ["0", "-1", "-0.5"])
def test_a_poll_interval_that_is_not_positive_is_refused(tmp_path: Path, value: str) -> None:
    env = {**os.environ, "DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_FLOWS_FOLDER": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "ductwork.cli", "scheduler", "--poll-interval", value],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # a scheduler that accepted it would run (and spin) until killed
    )
    assert done.returncode == 2
    assert "--poll-interval" in done.stderr and "x>0" in done.stderr


def test_a_schedule_stored_as_str_timedelta_still_backfills_and_triggers(cli: Cli, tmp_path: Path) -> None:
    """Releases before the fix stored ``timedelta(hours=6)`` as '6:00:00'."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    with Flow("six", schedule="6h", start_date="2024-01-01") as flow:
        EmptyOperator(task_id="t")
    graph = flow.to_graph()
    graph = dataclasses.replace(graph, meta=dataclasses.replace(graph.meta, schedule="6:00:00"))
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, graph)
    engine.dispose()
    env = {"DUCTWORK_DATABASE_URL": url}
    plan = cli("backfill", "six", "--start", "2024-01-01", "--end", "2024-01-01T23:00", "--dry-run", "--json", env=env)
    assert plan.exit_code == 0, plan.output
    assert [p["logical_date"][11:16] for p in json.loads(plan.output)] == ["00:00", "06:00", "12:00", "18:00"]
    run = cli("trigger", "six", "--date", "2024-02-01T06:00", "--json", env=env)
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["data_interval"][1].startswith("2024-02-01T12:00")


def test_scheduler_options_refuse_intervals_that_are_not_positive() -> None:
    from ductwork.engine.scheduler import SchedulerOptions
    from ductwork.errors import DefinitionError

    with pytest.raises(DefinitionError, match="poll-interval must be a positive number of seconds, got 0"):
        SchedulerOptions(poll_interval=0)
    with pytest.raises(DefinitionError, match="parse-timeout"):
        SchedulerOptions(parse_timeout=-1)


def test_backfill_max_runs_caps_a_backfill_and_its_dry_run_says_how_many(cli: Cli, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "daily.py").write_text(
        "from ductwork import EmptyOperator, Flow\n"
        "with Flow('daily', schedule='@daily', start_date='2024-01-01') as daily:\n"
        "    EmptyOperator(task_id='t')\n"
    )
    env = {"DUCTWORK_FLOWS_FOLDER": str(flows), "DUCTWORK_BACKFILL_MAX_RUNS": "5"}
    for dry in (["--dry-run"], []):
        refused = cli("backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-10", *dry, env=env)
        assert refused.exit_code == 2, refused.output
        assert "would create 10 runs, more than backfill_max_runs (5) allows" in refused.output
    listed = cli("runs", "list", "daily", "--json", env=env)
    assert json.loads(listed.output)["runs"] == []
    plan = cli("backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-05", "--dry-run", env=env)
    assert plan.exit_code == 0 and "5 run(s) to create" in plan.output, plan.output
    made = cli("backfill", "daily", "--start", "2024-01-01", "--end", "2024-01-05", "--json", env=env)
    assert made.exit_code == 0 and len(json.loads(made.output)) == 5
    bad = cli("config", env={**env, "DUCTWORK_BACKFILL_MAX_RUNS": "0"})
    assert bad.exit_code != 0 and "backfill_max_runs must be at least 1" in bad.output
