"""A scheduler whose try log folder cannot be written starts no try: each is put back, not
charged. That was said only in its workers' log lines; the person at the terminal, the web UI
and the log API said nothing but "no log yet: the task has not started". Now the scheduler and
``standalone`` say it when they start, ``standalone``'s pages show it, and the log API's 404 names it."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from ductwork_process import ductwork_process, process_env
from private_services import free_port
from tests.web.conftest import login

FLOW = """
from ductwork import Flow, PythonOperator

with Flow("quiet", schedule=None) as flow:
    PythonOperator(task_id="hello", python_callable=lambda: print("hello"))
"""

WARNING = "warning: the try logs cannot be written in"


def _wait(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "quiet.py").write_text(FLOW)
    (tmp_path / "a-file").write_text("not a folder")
    return {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "DUCTWORK_LOG_DIR": str(tmp_path / "a-file" / "logs"),  # under a file: ENOTDIR, even for root
    }


def test_the_scheduler_says_at_start_that_its_log_folder_cannot_be_written(tmp_path: Path) -> None:
    env = {**_env(tmp_path), "DUCTWORK_DATABASE_URL": "postgresql+psycopg://ductwork@127.0.0.1:1/nowhere"}
    started = ductwork_process("scheduler", "--start-wait", "0.2", env=env, cwd=tmp_path)
    assert started.returncode != 0  # no database here: it gives up after --start-wait
    assert f"{WARNING} {tmp_path / 'a-file' / 'logs'} (Not a directory): no try will start" in started.stderr
    assert "DUCTWORK_LOG_DIR" in started.stderr, started.stderr
    fine = ductwork_process(
        "scheduler", "--start-wait", "0.2", env={**env, "DUCTWORK_LOG_DIR": str(tmp_path / "logs")}, cwd=tmp_path
    )
    assert fine.returncode != 0 and WARNING not in fine.stderr, fine.stderr


def test_standalone_shows_why_no_try_starts_on_its_pages_and_in_the_log_api(tmp_path: Path) -> None:
    env = process_env({**_env(tmp_path), "PYTHONUNBUFFERED": "1"})
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out, err = tmp_path / "standalone.out", tmp_path / "standalone.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ductwork.cli", "standalone", "--port", str(port), "--workers", "1"],
            env=env, cwd=tmp_path, stdout=stdout, stderr=stderr, start_new_session=True,
        )  # fmt: skip
    try:
        _wait(lambda: "admin password:" in out.read_text(), "the admin password")
        password = out.read_text().split("admin password:")[1].split()[0]
        _wait(lambda: "Ductwork standalone:" in err.read_text(), "its first line")
        assert WARNING in err.read_text(), err.read_text()
        run = ductwork_process("trigger", "quiet", "--run-id", "r1", env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stderr

        def faulted() -> bool:
            try:
                detail = httpx.get(url + "/api/v1/health", timeout=5).json().get("scheduler_detail") or ""
            except (httpx.HTTPError, ValueError):
                return False
            return "platform fault" in detail

        _wait(faulted, "the scheduler to meet the fault")
        made = ductwork_process("tokens", "create", "admin", env=env, cwd=tmp_path)
        assert made.returncode == 0, made.stderr
        token = made.stdout.split()[0]
        logs = httpx.get(
            url + "/api/v1/flows/quiet/runs/r1/tasks/hello/logs",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert logs.status_code == 404
        said = logs.json()["detail"]
        assert "has not run yet: the scheduler cannot start tries" in said and "Not a directory" in said, said

        with httpx.Client(base_url=url, timeout=10) as browser:
            login(browser, "admin", password)
            shown = browser.get("/flows/quiet/runs/r1/tasks/hello")
        assert shown.status_code == 200
        assert 'id="platform-fault"' in shown.text and "cannot write the try" in shown.text, shown.text[:2000]
    finally:
        # Not SIGTERM: a stopping scheduler waits for the try it keeps putting back (reported).
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_web_server_of_its_own_says_what_keeps_the_scheduler_from_starting_tries(tmp_path: Path) -> None:
    """The fault was known only in the scheduler's process: a web server started on its own
    (``ductwork webserver``) found the scheduler's heartbeat fresh and answered "ok" while every
    run sat queued. The scheduler now writes the fault with its heartbeat."""
    from fastapi.testclient import TestClient

    from ductwork.api.app import create_app
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import jobs as job_repo

    env = process_env({**_env(tmp_path), "PYTHONUNBUFFERED": "1"})
    with (tmp_path / "scheduler.err").open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ductwork.cli", "scheduler", "--poll-interval", "0.2"],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
        )  # fmt: skip
    engine = None
    try:
        _wait(lambda: (tmp_path / "home" / "ductwork.db").exists(), "the scheduler's database")
        run = ductwork_process("trigger", "quiet", "--run-id", "r1", env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        engine = create_engine(f"sqlite:///{tmp_path / 'home' / 'ductwork.db'}")

        def written() -> str | None:
            with read_transaction(engine) as conn:
                jobs = job_repo.alive_jobs(conn, "scheduler", timeout=dt.timedelta(seconds=30))
            return jobs[0].fault if jobs else None

        fault = _wait(written, "the scheduler to write its fault with its heartbeat")
        assert "Not a directory" in fault, fault
        with TestClient(create_app(Settings(home=tmp_path / "web-home"), engine)) as web:
            health = web.get("/api/v1/health")
        body = health.json()
        assert body["status"] == "degraded" and body["scheduler"] == "alive", body
        assert body["scheduler_detail"].startswith("platform fault: ") and "Not a directory" in body["scheduler_detail"]
        assert f"pid {proc.pid}" in body["scheduler_detail"], body
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if engine is not None:
            engine.dispose()
