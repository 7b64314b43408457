"""``standalone`` (and ``ductwork scheduler``) reach for a database that went away at most every
5 s. The backoff grew to 30 s: a database back up was left unused for up to half a minute, with
``/api/v1/health`` answering "degraded" and no task starting. The health's ``scheduler_detail``
says when the next try is, so the cap is read there, not timed."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from ductwork_process import ductwork_process, process_env
from private_services import free_port, private_postgres

FLOW = """
from ductwork import Flow, PythonOperator

with Flow("tick", schedule=None) as flow:
    PythonOperator(task_id="tick", python_callable=lambda: None)
"""


def _wait(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _health(port: int) -> dict[str, Any]:
    try:
        return dict(httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=5).json())
    except (httpx.HTTPError, ValueError):
        return {}


def test_standalone_tries_a_lost_database_at_least_every_5_seconds(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "tick.py").write_text(FLOW)
    port = free_port()
    with private_postgres() as pg:
        env = process_env(
            {
                "DUCTWORK_HOME": str(tmp_path / "home"),
                "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
                "DUCTWORK_DATABASE_URL": pg.create_database("backoff"),
            }
        )
        with (tmp_path / "standalone.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ductwork.cli", "standalone", "--port", str(port), "--workers", "1"],
                env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        try:
            _wait(lambda: _health(port).get("scheduler") == "alive", "standalone to answer")
            # A run that ends shows the scheduler past its start (an outage during the start is
            # waited out for --start-wait only, then it exits: not what is tested here).
            ran = ductwork_process("trigger", "tick", "--wait", "--timeout", "60", env=env, cwd=tmp_path)
            assert ran.returncode == 0, ran.stdout + ran.stderr
            pg.stop()
            tries: list[tuple[int, float]] = []

            def sixth_try() -> bool:
                said = re.search(r"; try (\d+) in ([\d.]+)s", _health(port).get("scheduler_detail") or "")
                if said:
                    tries.append((int(said[1]), float(said[2])))
                return bool(said) and int(said[1]) >= 6

            _wait(sixth_try, "the sixth try to reach the database")
            waits = dict(tries)
            assert max(waits.values()) == 5 and waits[max(waits)] == 5, tries  # 0.5, 1, 2, 4, then 5 (was 8, 16, 30)
            pg.start()
            _wait(lambda: _health(port).get("scheduler") == "alive", "the scheduler to go on")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
