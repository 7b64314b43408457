"""A try queued on a queue no live worker listens on (``queue="gpu"``, no ``ductwork worker
--queues gpu``) waits for ever: ``tasks state``, ``runs show``, ``trigger --wait`` and ``tasks
logs --follow`` say so next to it, not only ``workers list``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import Cli
from ductwork.cli import scheduler_socket
from ductwork.settings import Settings
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.repo import remote as remote_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.tables import runs, task_instances
from ductwork_process import ductwork_command, process_env

FLOW = """
    from ductwork import Flow, PythonOperator

    with Flow("gpu", schedule=None) as gpu:
        prep = PythonOperator(task_id="prep", python_callable=lambda: 1)
        train = PythonOperator(task_id="train", python_callable=lambda: 2, queue="gpu")
        prep >> train
"""

CELERY = {"DUCTWORK_EXECUTOR": "celery"}


def _waiting_run(cli: Cli, tmp_path: Path) -> str:
    """A run whose two tasks are queued, as a scheduler with the Celery executor leaves them,
    and one live worker, on the default queue only."""
    (tmp_path / "gpu.py").write_text(textwrap.dedent(FLOW))
    ran = cli("run", "gpu.py", "--no-progress")
    assert ran.exit_code == 0, ran.output
    run_id = json.loads(cli("runs", "list", "gpu", "--json").output)["runs"][0]["run_id"]
    engine = create_engine(Settings.load().db_url)
    try:
        with transaction(engine) as conn:
            conn.execute(sa.update(runs).values(state="running", end_date=None))
            conn.execute(sa.update(task_instances).values(state="queued"))
            remote_repo.register_worker(
                conn,
                "w1@alpha",
                hostname="alpha",
                pid=11,
                kind="celery",
                queues=["default"],
                concurrency=2,
                version="t",
            )
    finally:
        engine.dispose()
    return run_id


def test_tasks_state_says_which_queue_has_no_worker(cli: Cli, tmp_path: Path) -> None:
    run_id = _waiting_run(cli, tmp_path)
    shown = cli("tasks", "state", "gpu", run_id, env=CELERY)
    assert shown.exit_code == 0, shown.output
    assert "train: queued (try 1)\n  waits: no live worker listens on queue 'gpu'" in shown.output
    assert "`ductwork worker --queues gpu`" in shown.output
    assert shown.output.count("waits:") == 1  # prep's queue has its worker

    table = cli("runs", "show", "gpu", run_id, env={**CELERY, "COLUMNS": "250"})
    assert "waits: no live worker listens on queue 'gpu'" in table.output, table.output
    assert table.output.count("waits:") == 1
    run = json.loads(cli("runs", "show", "gpu", run_id, "--json", env=CELERY).output)
    assert run["tasks"]["train"]["unserved_queue"] == "gpu" and "unserved_queue" not in run["tasks"]["prep"]

    as_json = json.loads(cli("tasks", "state", "gpu", run_id, "--json", env=CELERY).output)
    assert as_json["train"] == {"state": "queued", "try_number": 1, "unserved_queue": "gpu"}
    assert as_json["prep"] == {"state": "queued", "try_number": 1}

    engine = create_engine(Settings.load().db_url)
    try:
        with transaction(engine) as conn:
            remote_repo.register_worker(
                conn, "gpu-box@beta", hostname="beta", pid=12, kind="celery", queues=["gpu"], concurrency=1, version="t"
            )
    finally:
        engine.dispose()
    served = cli("tasks", "state", "gpu", run_id, env=CELERY)
    assert "waits:" not in served.output, served.output


def test_workers_list_says_which_queue_has_no_worker_and_how_to_serve_it(cli: Cli, tmp_path: Path) -> None:
    """It said "queue 'gpu': 1 queued tries", and not the command the web UI's workers page and
    ``tasks state`` give for it."""
    _waiting_run(cli, tmp_path)
    listed = cli("workers", "list", env={**CELERY, "COLUMNS": "250"})
    assert listed.exit_code == 0, listed.output
    assert (
        "queue 'gpu': 1 queued try, and no live worker listens on it: start one with `ductwork worker --queues gpu`"
        in listed.output
    ), listed.output
    assert json.loads(cli("workers", "list", "--json", env=CELERY).output)["unserved_queues"] == {"gpu": 1}


def _stop_the_worker() -> None:
    """The one worker listening on "gpu" stops: no live worker serves that queue any more."""
    engine = create_engine(Settings.load().db_url)
    try:
        with transaction(engine) as conn:
            remote_repo.stop_worker(conn, "w1@alpha")
    finally:
        engine.dispose()


def test_the_local_executor_runs_every_queue(cli: Cli, tmp_path: Path) -> None:
    run_id = _waiting_run(cli, tmp_path)
    _stop_the_worker()
    shown = json.loads(cli("tasks", "state", "gpu", run_id, "--json").output)
    assert "unserved_queue" not in shown["train"]


def test_the_kubernetes_executor_waits_for_no_worker(cli: Cli, tmp_path: Path) -> None:
    """With ``executor = "kubernetes"`` each try gets a pod of its own: no worker listens on any
    queue, and none should be started. A queued try said "no live worker listens on queue
    'default': start one with `ductwork worker --queues default`", which sent users to start
    Celery workers that would never get a try."""
    run_id = _waiting_run(cli, tmp_path)
    _stop_the_worker()
    kube = {"DUCTWORK_EXECUTOR": "kubernetes"}
    shown = cli("tasks", "state", "gpu", run_id, env=kube)
    assert shown.exit_code == 0, shown.output
    assert "waits:" not in shown.output, shown.output
    as_json = json.loads(cli("tasks", "state", "gpu", run_id, "--json", env=kube).output)
    assert as_json["train"] == {"state": "queued", "try_number": 1}
    table = cli("runs", "show", "gpu", run_id, env={**kube, "COLUMNS": "250"})
    assert "waits:" not in table.output, table.output
    workers = json.loads(cli("workers", "list", "--json", env=kube).output)
    assert workers["unserved_queues"] == {}
    listed = cli("workers", "list", env=kube)
    assert "no live worker" not in listed.output, listed.output


def test_trigger_wait_says_it_once(
    cli: Cli, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ductwork.cli import runs_cmd

    run_id = _waiting_run(cli, tmp_path)
    monkeypatch.setattr(runs_cmd, "NO_SCHEDULER_AFTER", 0.0)
    monkeypatch.setattr(runs_cmd, "UNSERVED_EVERY", 0.1)
    monkeypatch.setenv("DUCTWORK_EXECUTOR", "celery")
    settings = Settings.load()
    engine = create_engine(settings.db_url)
    try:
        with read_transaction(engine) as conn:
            record = run_repo.get_run(conn, "gpu", run_id)
        assert record is not None
        ended = runs_cmd._wait(engine, record, 0.6, settings=settings)
    finally:
        engine.dispose()
    assert ended.state.value == "running"
    err = capsys.readouterr().err
    assert err.count("note:") == 1, err
    assert "note: train queued, but no live worker listens on queue 'gpu'" in err and "still waiting" in err


@pytest.mark.skipif(not scheduler_socket.available(), reason="abstract Unix sockets are Linux's")
def test_trigger_wait_handed_to_the_scheduler_says_it_too(tmp_path: Path) -> None:
    """The same note and table when the command hands the trigger to the scheduler running for
    its home (ADR 0023), which waits for it: a real Celery scheduler, with no worker at all (its
    broker is not even reachable: its tries are recorded queued and wait)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "gpu.py").write_text(textwrap.dedent(FLOW))
    home = tmp_path / "home"
    env = process_env(
        {
            "DUCTWORK_HOME": str(home),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_EXECUTOR": "celery",
            "DUCTWORK_BROKER_URL": "redis://127.0.0.1:1/0",
            "PYTHONUNBUFFERED": "1",
            "COLUMNS": "250",
        }
    )
    with (tmp_path / "scheduler.log").open("wb") as log:
        proc = subprocess.Popen(
            ductwork_command("scheduler"), env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    try:
        address = scheduler_socket.address(scheduler_socket.real_home(str(home)))
        deadline = time.monotonic() + 60
        while True:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(address)
                    break
                except OSError:
                    assert time.monotonic() < deadline, (tmp_path / "scheduler.log").read_text()
                    time.sleep(0.05)
        waited = subprocess.run(
            ductwork_command("trigger", "gpu", "--wait", "--timeout", "6"),
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert waited.returncode == 3, (waited.stdout, waited.stderr)
    assert "note: prep queued, but no live worker listens on queue 'default'" in waited.stderr, waited.stderr
    assert waited.stderr.count("note:") == 1
    assert "waits: no live worker listens on queue 'default'" in waited.stdout, waited.stdout
