"""Issue 9 (item 2): a PostgreSQL restart or stop does not stop ``ductwork standalone`` (the
scheduler and the web server in one process): it waits, says so in its log and in
``/api/v1/health``, reconnects, and the run it was driving ends with every task run once.

The database is a private PostgreSQL (``tests/private_services.py``), really stopped and started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from private_services import free_port, private_postgres

FLOW = textwrap.dedent(
    """
    import os, time, uuid
    from ductwork import Flow, PythonOperator

    MARKS = os.environ["DUCTWORK_TEST_MARKS"]

    def step(task_id, ti):
        time.sleep(0.15)
        name = f"{task_id}.{ti.try_number}.{uuid.uuid4().hex}"
        os.close(os.open(os.path.join(MARKS, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY))

    with Flow("steady", schedule=None) as steady:
        previous = None
        for n in range(40):
            op = PythonOperator(task_id=f"s{n:02d}", python_callable=step, op_args=[f"s{n:02d}"])
            if previous is not None:
                previous >> op
            previous = op
    """
)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def _health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
    except httpx.HTTPError:
        return 0, {}
    return response.status_code, response.json()


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ductwork.cli", *args], env=env, capture_output=True, text=True)


def test_standalone_waits_out_a_postgres_restart_and_stop_and_loses_nothing(tmp_path: Path) -> None:
    flows, marks = tmp_path / "flows", tmp_path / "marks"
    flows.mkdir()
    marks.mkdir()
    (flows / "steady.py").write_text(FLOW)
    port = free_port()
    with private_postgres() as pg:
        env = {
            **os.environ,
            "DUCTWORK_HOME": str(tmp_path / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_DATABASE_URL": pg.create_database("outage"),
            "DUCTWORK_TEST_MARKS": str(marks),
            "PYTHONUNBUFFERED": "1",
        }
        log_path = tmp_path / "standalone.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ductwork.cli", "standalone", "--port", str(port), "--workers", "2"],
                env={**env, "COLUMNS": "300"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(lambda: _health(port)[0] == 200, 90, "standalone to answer")
            wait_for(lambda: _cli(env, "trigger", "steady", "--run-id", "r1").returncode == 0, 60, "a trigger")
            wait_for(lambda: len(list(marks.iterdir())) >= 5, 60, "the run to get going")

            pg.restart()  # a quick restart, then a longer stop
            wait_for(lambda: len(list(marks.iterdir())) >= 12, 60, "the run to go on after the restart")
            pg.stop()
            status, body = wait_for(
                lambda: (lambda h: h if h[1].get("scheduler") == "waiting_for_database" else None)(_health(port)),
                30,
                "the health endpoint to say the scheduler waits for the database",
            )
            assert status == 503 and body["database"] == "unreachable"
            assert "unreachable" in body["scheduler_detail"] and "try " in body["scheduler_detail"]
            time.sleep(3)
            assert proc.poll() is None, "standalone exited while the database was down"
            pg.start()

            def finished() -> bool:
                shown = _cli(env, "runs", "show", "steady", "r1", "--json")
                return shown.returncode == 0 and json.loads(shown.stdout)["state"] == "success"

            wait_for(finished, 120, "the run to succeed")
            status, body = wait_for(
                lambda: (lambda h: h if h[1].get("scheduler") == "alive" else None)(_health(port)),
                30,
                "the health endpoint to see the scheduler again",
            )
            assert status == 200 and body["status"] == "ok" and body["database"] == "ok"
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
    log_text = log_path.read_text(errors="replace")
    assert "the database is unreachable" in log_text and "the database answers again" in log_text, log_text[-3000:]
    runs = Counter(name.split(".")[0] for name in os.listdir(marks))
    assert sorted(runs) == [f"s{n:02d}" for n in range(40)]
    assert set(runs.values()) == {1}, f"tasks that ran more than once: { {t: n for t, n in runs.items() if n > 1} }"
    assert all(name.split(".")[1] == "1" for name in os.listdir(marks)), "a try was charged to a task"


def test_a_scheduler_started_while_the_database_is_down_waits_then_gives_up_or_goes_on(tmp_path: Path) -> None:
    """At start, ``--start-wait`` bounds the wait (a wrong URL is reported, not hung on);
    ``--start-wait 0`` waits until the database comes up, then schedules as usual."""
    flows = tmp_path / "flows"
    flows.mkdir()
    with private_postgres() as pg:
        env = {
            **os.environ,
            "DUCTWORK_HOME": str(tmp_path / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_DATABASE_URL": pg.create_database("late"),
            "PYTHONUNBUFFERED": "1",
        }
        pg.stop()
        started = time.monotonic()
        gave_up = _cli(env, "scheduler", "--start-wait", "2", "--workers", "1")
        assert gave_up.returncode != 0 and time.monotonic() - started < 60
        assert "unreachable" in gave_up.stdout + gave_up.stderr
        log_path = tmp_path / "scheduler.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ductwork.cli", "scheduler", "--start-wait", "0", "--workers", "1"],
                env={**env, "COLUMNS": "300"},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_for(
                lambda: "the database is unreachable at start" in log_path.read_text(errors="replace"), 60, "the wait"
            )
            time.sleep(3)
            assert proc.poll() is None, "the scheduler gave up although told to wait forever"
            pg.start()
            wait_for(lambda: "scheduler started" in log_path.read_text(errors="replace"), 90, "the scheduler to start")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def test_a_database_that_goes_away_while_the_scheduler_starts_is_waited_for(tmp_path: Path) -> None:
    """The database answers, then goes away part way through the scheduler's start (a restart
    under way; the chaos test met it): it waits again and starts once it is back, with one
    job recorded, instead of exiting."""
    import datetime as dt
    import threading

    from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
    from ductwork.settings import Settings
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import jobs as job_repo

    flows = tmp_path / "flows"
    flows.mkdir()
    with private_postgres() as pg:
        url = pg.create_database("midstart")
        engine = create_engine(url)
        migrate.upgrade(engine)
        settings = Settings(home=tmp_path / "home", flows_folder=flows, database_url=url, parallelism=1)
        service = SchedulerService(settings, options=SchedulerOptions(schedule=False, outage_backoff_max=0.5))
        replays: list[float] = []
        replay = service.replay_journals

        def replay_during_a_restart() -> None:  # the database stops after the start's first steps
            replays.append(time.monotonic())
            if len(replays) == 1:
                pg.stop()
                threading.Timer(1.0, pg.start).start()
            replay()

        service.replay_journals = replay_during_a_restart  # type: ignore[method-assign]
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: service.status().state == "running" or not thread.is_alive(), 90, "the start")
            assert thread.is_alive() and service.status().state == "running", service.status()
            assert len(replays) >= 2  # the start was taken up again
            with read_transaction(engine) as conn:
                jobs = job_repo.alive_jobs(conn, "scheduler", timeout=dt.timedelta(minutes=5))
            assert len(jobs) == 1
        finally:
            service.stop()
            thread.join(timeout=60)
            engine.dispose()
