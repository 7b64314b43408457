"""Retention and deletion while a scheduler runs, on SQLite, PostgreSQL and MariaDB.

A scheduler with ``retention_days=30`` runs flows while its background retention deletes a
backlog of runs that ended 40 days ago. Nothing still needed goes: runs the scheduler is running
(one of them looks 40 days old), the latest and latest scheduled run of the old flow; the new
runs finish; old audit entries are trimmed. A run deleted by hand and triggered again under the
same run id with other parameters runs with the new ones (no process keeps the old run's key).
"""

from __future__ import annotations

import datetime as dt
import os
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.states import RunState, TaskState
from ductwork.engine.local import safe_name
from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.services import cleanup
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.repo import audit as audit_repo
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.results import SqlResults
from ductwork.store.tables import runs as runs_table

FLOW = """
    import time
    from ductwork import Flow, PythonOperator

    with Flow("tick", schedule=None, params={"n": 1}) as tick:
        first = PythonOperator(task_id="first", python_callable=lambda params: params["n"] * 10)
        second = PythonOperator(task_id="second", python_callable=lambda ti: ti.xcom_pull("first") + 1)
        first >> second

    with Flow("slow", schedule=None) as slow:
        PythonOperator(task_id="nap", python_callable=lambda: time.sleep(4) or "rested")
"""
OLD_RUNS = 30
NOW = dt.datetime.now(dt.UTC)


def _old_flow() -> FlowGraph:
    nodes = {t: NodeSpec(t, ups) for t, ups in (("a", ()), ("b", ("a",)), ("c", ("b",)))}
    return FlowGraph(FlowMeta("old"), nodes)  # no schedule: the scheduler creates no runs of it


def _seed_backlog(engine: Engine, logs: Path) -> None:
    """Runs of flow 'old' that ended 40 days ago (a log file per task), scheduled ones first."""
    graph = _old_flow()
    ended = NOW - dt.timedelta(days=40)
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, graph)
        for i in range(OLD_RUNS):
            run = run_repo.create_run(
                conn,
                graph,
                run_id=f"old_{i:03d}",
                run_type="scheduled" if i < OLD_RUNS // 2 else "manual",
                logical_date=NOW - dt.timedelta(days=400 - i),
                states=dict.fromkeys(graph.nodes, TaskState.SUCCESS),
                state=RunState.RUNNING,
                now=ended,
            )
            run_repo.set_run_state(conn, run.pk, RunState.SUCCESS, at=ended)
            folder = logs / "old" / safe_name(run.run_id)
            folder.mkdir(parents=True)
            for task in graph.nodes:
                (folder / f"{task}.1.log").write_text("old output\n")
        for days in (400, 1):
            audit_repo.add_entry(
                conn,
                audit_repo.AuditEntry(
                    "someone", "cli", "host", "run.trigger", "old", {}, NOW - dt.timedelta(days=days)
                ),
            )


def _wait(check: object, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _states(engine: Engine, flow_id: str) -> dict[str, str]:
    with read_transaction(engine) as conn:
        return {r.run_id: r.state.value for r in run_repo.list_runs(conn, flow_id=flow_id, limit=1000).items}


@pytest.fixture
def running(db_url: str, tmp_path: Path) -> Iterator[tuple[SchedulerService, Engine, Settings]]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "tick.py").write_text(textwrap.dedent(FLOW))
    settings = Settings(
        home=tmp_path / "home",
        flows_folder=flows,
        database_url=db_url,
        parallelism=2,
        retention_days=30,
        audit_retention_days=30,
    )
    engine = create_engine(db_url)
    migrate.upgrade(engine)
    _seed_backlog(engine, settings.logs)
    options = SchedulerOptions(poll_interval=0.1, parse_interval=0.3, retention_interval=0.5, retention_first_after=1.0)
    service = SchedulerService(settings, options=options)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: "tick" in {f.flow_id for f in _flows(engine)}, "the scheduler to parse tick.py")
        yield service, engine, settings
    finally:
        service.stop()
        thread.join(timeout=60)
        engine.dispose()


def _flows(engine: Engine) -> list[object]:
    with read_transaction(engine) as conn:
        return list(flow_repo.list_flows(conn))


def test_retention_and_deletion_while_the_scheduler_runs(running: tuple[SchedulerService, Engine, Settings]) -> None:
    service, engine, settings = running
    slow = run_service.trigger(engine, "slow", run_id="slow_run")
    _wait(lambda: _states(engine, "slow").get("slow_run") == "running", "the slow run to start")
    with transaction(engine) as conn:  # it looks 40 days old, but it is running
        conn.execute(
            sa.update(runs_table)
            .where(runs_table.c.id == slow.pk)
            .values(queued_at=NOW - dt.timedelta(days=40), updated_at=NOW - dt.timedelta(days=40))
        )
    ticks = [run_service.trigger(engine, "tick", params={"n": i}, run_id=f"tick_{i}") for i in range(1, 5)]

    assert service.retention is not None
    _wait(lambda: len(_states(engine, "old")) == 2, "retention to delete the backlog")
    kept = _states(engine, "old")
    assert kept == {f"old_{OLD_RUNS // 2 - 1:03d}": "success", f"old_{OLD_RUNS - 1:03d}": "success"}
    # The files go right after the rows' transaction commits.
    _wait(lambda: sorted(p.name for p in (settings.logs / "old").iterdir()) == sorted(kept), "the old logs to go")

    _wait(lambda: set(_states(engine, "tick").values()) == {"success"} and len(_states(engine, "tick")) == 4, "ticks")
    _wait(lambda: _states(engine, "slow")["slow_run"] == "success", "the slow run to finish")
    results = SqlResults(engine)
    assert [results.pull(t.key, "second") for t in ticks] == [11, 21, 31, 41]

    # By hand: delete tick_2 and run it again with another parameter, under the same run id.
    report = cleanup.delete_run(engine, "tick", "tick_2", logs=settings.logs)
    assert (report.runs, report.tries, report.results) == (1, 2, 2)
    assert not (settings.logs / "tick" / "tick_2").exists()
    again = run_service.trigger(engine, "tick", params={"n": 7}, run_id="tick_2")
    _wait(lambda: _states(engine, "tick")["tick_2"] == "success", "tick_2 to run again")
    assert results.pull(again.key, "second") == 71

    with read_transaction(engine) as conn:
        entries = audit_repo.list_entries(conn).items
    assert [e.actor for e in entries if e.actor == "someone"] == ["someone"], "the 400-day-old entry is gone"
    cleaned = [e for e in entries if e.action == "retention.clean"]
    assert cleaned and cleaned[-1].via == "scheduler" and cleaned[-1].details["runs"] == OLD_RUNS - 2
    assert os.path.isdir(settings.logs / "tick" / "tick_1")
