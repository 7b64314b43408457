"""``.../logs?follow=true`` on a task that has not started yet waits for its first try: it
answered 404 "has not run yet", so following a run's last task right after the trigger failed
and a script had to poll for the try itself (``ductwork tasks logs --follow`` waited)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine

from ductwork.core.events import TryOutcome
from ductwork.core.states import RunState, TaskState
from ductwork.engine.journal import encode_outcome
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import remote as remote_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from tests.web.conftest import Api
from tests.web.seed import T0, Seeded, demo_flow


def _path(run_id: str, task_id: str) -> str:
    return f"/api/v1/flows/demo/runs/{quote(run_id, safe='')}/tasks/{task_id}/logs?follow=true"


def _followed(api: Api, path: str) -> list[str]:
    with api.client.stream("GET", path, headers=api.headers) as response:
        assert response.status_code == 200, response.read()
        return list(response.iter_text())


def _run_pk(engine: Engine, run_id: str) -> int:
    with read_transaction(engine) as conn:
        record = run_repo.get_run(conn, "demo", run_id)
    assert record is not None
    return record.pk


def test_following_a_task_that_has_not_started_waits_and_streams_its_first_try(
    viewer: Api, engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    pk = _run_pk(engine, seeded.running_run)
    log = tmp_path / "load-1.log"

    def start_and_finish() -> None:
        time.sleep(0.8)
        now = dt.datetime.now(dt.UTC)
        log.write_text("loading\n")
        with transaction(engine) as conn:
            task_repo.try_started(conn, pk, "load", 1, hostname="w", pid=1, at=now, log_path=str(log))
        time.sleep(0.5)
        with log.open("a") as fh:
            fh.write("loaded\n")
        with transaction(engine) as conn:
            task_repo.try_finished(conn, pk, "load", 1, TryOutcome(TaskState.SUCCESS, now, now))

    worker = threading.Thread(target=start_and_finish, daemon=True)
    worker.start()
    chunks = _followed(viewer, _path(seeded.running_run, "load"))
    worker.join()
    assert chunks[0] == "*** load has not started yet (queued); waiting for its first try\n"
    assert "".join(chunks[1:]) == "loading\nloaded\n"


def test_a_followed_task_that_ends_without_running_says_so(viewer: Api, engine: Engine, seeded: Seeded) -> None:
    pk = _run_pk(engine, seeded.running_run)

    def skip() -> None:
        time.sleep(0.8)
        with transaction(engine) as conn:
            task_repo.mark_task_instances(conn, pk, ["report"], TaskState.SKIPPED, reason="test")

    worker = threading.Thread(target=skip, daemon=True)
    worker.start()
    text = "".join(_followed(viewer, _path(seeded.running_run, "report")))
    worker.join()
    assert text == (
        "*** report has not started yet (queued); waiting for its first try\n"
        f"*** no log: task 'report' of run {seeded.running_run} ended skipped without running: it has no log\n"
    )


def test_what_is_known_at_once_is_still_a_404(viewer: Api, seeded: Seeded) -> None:
    def refused(path: str) -> str:
        response: Any = viewer.client.get(path, headers=viewer.headers)
        assert response.status_code == 404, response.text
        return str(response.json()["detail"])

    assert "Did you mean" in refused(_path(seeded.running_run, "lod"))
    assert refused(_path(seeded.failed_run, "report")) == (
        f"task 'report' of run {seeded.failed_run} ended failed without running: it has no log"
    )


def test_a_try_that_ended_before_any_host_ran_it_says_why_it_has_no_log(viewer: Api, engine: Engine) -> None:
    """A try whose pod failed before it started (or could not be made, or whose worker was lost
    before claiming it) is ended by the scheduler with the reason and no log: asking for its log
    said "has no log file recorded", which read as a log lost; it says how the try ended."""
    graph = demo_flow().to_graph()
    with transaction(engine) as conn:
        pk = run_repo.create_run(
            conn,
            graph,
            run_id="podless",
            logical_date=T0 + dt.timedelta(days=30),
            states=dict.fromkeys(graph.nodes, TaskState.QUEUED),
            tries=dict.fromkeys(graph.nodes, 1),
            state=RunState.RUNNING,
        ).pk
        now = dt.datetime.now(dt.UTC)
        outcome = TryOutcome(
            TaskState.FAILED, now, now, error="its pod ended Failed: container try exited 137 (OOMKilled)"
        )
        assert (
            remote_repo.end_try(
                conn, pk, "extract.orders", 1, outcome, encode_outcome(outcome), expected=(TaskState.QUEUED,)
            )
            is None
        )
    response: Any = viewer.client.get(
        "/api/v1/flows/demo/runs/podless/tasks/extract.orders/logs", headers=viewer.headers
    )
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == (
        "try 1 of task 'extract.orders' of run podless ended failed without running "
        "(its pod ended Failed: container try exited 137 (OOMKilled)): it has no log"
    )


def test_a_try_that_starts_while_the_follow_begins_is_not_said_not_started(
    viewer: Api, engine: Engine, tmp_path: Path, monkeypatch: Any
) -> None:
    """The try started between the check that the task had no try yet and the waiting line:
    the answer began "*** t has not started yet (running); waiting for its first try", a
    contradiction. A task whose try has begun streams that try at once, with no waiting line."""
    from ductwork.services import tasks as task_service

    graph = demo_flow().to_graph()
    with transaction(engine) as conn:
        pk = run_repo.create_run(
            conn,
            graph,
            run_id="raced",
            logical_date=T0 + dt.timedelta(days=31),
            states=dict.fromkeys(graph.nodes, TaskState.QUEUED),
            tries=dict.fromkeys(graph.nodes, 1),
            state=RunState.RUNNING,
        ).pk
    log = tmp_path / "raced.log"
    log.write_text("started\n")
    checked = task_service._may_still_start

    def start_right_after_the_check(*args: Any, **kwargs: Any) -> bool:
        may = checked(*args, **kwargs)
        monkeypatch.setattr(task_service, "_may_still_start", checked)
        now = dt.datetime.now(dt.UTC)
        with transaction(engine) as conn:
            task_repo.try_started(conn, pk, "load", 1, hostname="w", pid=1, at=now, log_path=str(log))
            task_repo.try_finished(conn, pk, "load", 1, TryOutcome(TaskState.SUCCESS, now, now))
        return may

    monkeypatch.setattr(task_service, "_may_still_start", start_right_after_the_check)
    assert "".join(_followed(viewer, _path("raced", "load"))) == "started\n"
