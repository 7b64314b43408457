"""A try that ends after its scheduler was killed -9 is recorded by the next scheduler from its
worker's journal; the updates of its outlets were not: the asset showed no update and the flows
scheduled on it never ran (the events tester's 500-message burst with a kill: 503 runs, 496
asset updates)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from ductwork_process import ductwork_process, scheduler_process, stop_process
from tests.remote.support import wait_for

FLOWS = """
import os
import signal
import time

from ductwork import Asset, Flow, PythonOperator

LANDED = Asset("s3://lake/landed")


def kill_my_scheduler_then_finish():
    with open(os.environ["SCHEDULER_PID_FILE"]) as pid:
        os.kill(int(pid.read()), signal.SIGKILL)
    time.sleep(0.5)
    open(os.environ["SCHEDULER_PID_FILE"] + ".ended", "w").close()


with Flow("producer", schedule=None) as producer:
    PythonOperator(task_id="land", python_callable=kill_my_scheduler_then_finish, outlets=[LANDED])

with Flow("consumer", schedule=[LANDED]) as consumer:
    PythonOperator(task_id="use", python_callable=lambda: None)
"""


def test_an_outlet_updated_by_a_try_that_ended_after_a_kill_is_recorded_on_restart(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "landing.py").write_text(FLOWS)
    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(flows),
        "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'ductwork.db'}",
        "SCHEDULER_PID_FILE": str(tmp_path / "scheduler.pid"),
    }
    assert ductwork_process("db", "upgrade", env=env, cwd=tmp_path).returncode == 0

    def runs(flow: str) -> list[dict[str, str]]:
        done = ductwork_process("runs", "list", flow, "--json", env=env, cwd=tmp_path)
        return json.loads(done.stdout)["runs"] if done.returncode == 0 else []

    first = scheduler_process(env, tmp_path, tmp_path / "first.log")
    (tmp_path / "scheduler.pid").write_text(str(first.pid))
    try:
        wait_for(lambda: "scheduler started" in (tmp_path / "first.log").read_text(), 60, "the scheduler to start")
        assert ductwork_process("trigger", "producer", "--run-id", "r1", env=env, cwd=tmp_path).returncode == 0
        first.wait(timeout=60)  # killed -9 by the task
        wait_for(lambda: (tmp_path / "scheduler.pid.ended").exists(), 60, "the try to end")
        threading.Event().wait(2)  # its end journaled: the next scheduler reads it, not the worker's
    finally:
        if first.poll() is None:
            stop_process(first)
    second = scheduler_process(env, tmp_path, tmp_path / "second.log")
    try:
        wait_for(lambda: [r["state"] for r in runs("producer")] == ["success"], 90, "the producer's run to succeed")
        wait_for(lambda: [r["state"] for r in runs("consumer")] == ["success"], 90, "the consumer's run")
    finally:
        stop_process(second)
    shown = ductwork_process("assets", "show", "s3://lake/landed", "--json", env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "r1" in shown.stdout, shown.stdout
