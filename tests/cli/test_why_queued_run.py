"""`ductwork why` on a task of a run that stays queued: the flow's max_active_runs is taken, and
(an earlier run cleared while a later one ran) the later run's depends_on_past task waits for
this very run, so neither moves. It said "the task has no cache, so it runs in every run"."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

from conftest import Cli
from ductwork import Flow, PythonOperator
from ductwork.core.states import RunState
from ductwork.services import runs as run_service
from ductwork.store import migrate
from ductwork.store.engine import create_engine, transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo


def test_why_names_the_run_that_holds_a_queued_one_and_the_way_out(cli: Cli, tmp_path: Path) -> None:
    with Flow("daily", schedule=None, max_active_runs=1) as flow:
        PythonOperator(task_id="load", python_callable=print, depends_on_past=True)
    engine = create_engine(f"sqlite:///{Path(os.environ['DUCTWORK_HOME']) / 'ductwork.db'}")
    migrate.upgrade(engine)
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph())
    day = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    cleared = run_service.trigger(engine, "daily", run_id="d2", logical_date=day + dt.timedelta(days=1))
    later = run_service.trigger(engine, "daily", run_id="d3", logical_date=day + dt.timedelta(days=2))
    with transaction(engine) as conn:
        run_repo.set_run_state(conn, later.pk, RunState.RUNNING)
    engine.dispose()
    assert cleared.state == RunState.QUEUED
    said = cli("why", "daily", "load", "d2", "--json")
    assert said.exit_code == 0, said.output
    answer = json.loads(said.output)
    assert answer["decision"] == "waiting"
    assert "max_active_runs" in answer["text"] and "allows 1 active run(s): d3 running" in answer["text"]
    assert "Run d3 waits in turn for this run's load (depends_on_past)" in answer["text"]
    assert "ductwork runs cancel daily d3" in answer["text"]
    later_said = json.loads(cli("why", "daily", "load", "d3", "--json").output)
    assert "depends_on_past" in later_said["text"] and "d2" in later_said["text"]
