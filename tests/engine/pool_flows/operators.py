"""Operator flows that tests/engine/test_pool_executor.py runs in worker processes.

Tasks that need a place for marker files read it from the run parameter ``root``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ductwork import BaseOperator, BashOperator, Flow, PythonOperator, TaskContext, flow, task


def _write_marker(path: Path, text: str) -> None:
    """Written then renamed: a test that waits for the file to exist never reads it empty."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def _root(params: Any) -> Path:
    return Path(params["root"])


# --- results passed between tasks in different processes ----------------------------------------
with Flow("pass_results") as pass_results:
    first = PythonOperator(task_id="first", python_callable=lambda: 20)
    second = PythonOperator(task_id="second", python_callable=lambda x: x + 1, op_args=[first.output])
    PythonOperator(
        task_id="third",
        python_callable=lambda x: {"value": x * 2, "pid": os.getpid()},
        op_args=[second.output],
    )


# --- decorated functions ---------------------------------------------------------------------
@task(multiple_outputs=True)
def stats(values: list[int]) -> dict[str, int]:
    return {"n": len(values), "total": sum(values)}


@task
def mean(n: int, total: int) -> float:
    return total / n


@flow
def decorated(values: list = [1, 2, 3, 6]) -> None:  # noqa: B006
    s = stats(values)
    mean(s["n"], s["total"])


# --- retries -------------------------------------------------------------------------------------
def flaky(try_number: int) -> int:
    if try_number < 3:
        raise RuntimeError(f"failing on purpose in try {try_number}")
    return try_number


with Flow("retries") as retries:
    PythonOperator(task_id="flaky", python_callable=flaky, retries=2, retry_delay=0)


# --- what a try's log receives -----------------------------------------------------------------
def noisy() -> str:
    print("printed by the task")
    print("printed to stderr by the task", file=sys.stderr)
    logging.getLogger("user.code").warning("logged by the task")
    subprocess.run(["sh", "-c", "echo echoed by a subprocess; echo subprocess stderr >&2"], check=True)
    os.write(1, b"written straight to fd 1\n")
    return "done"


with Flow("noisy") as noisy_flow:
    PythonOperator(task_id="noisy", python_callable=noisy)


# --- a worker killed in the middle of a try ----------------------------------------------------
def victim(params: Any, try_number: int) -> str:
    if try_number == 1:
        _write_marker(_root(params) / "victim.pid", str(os.getpid()))
        time.sleep(60)
    return f"survived in try {try_number}"


with Flow("killed", params={"root": "."}) as killed:
    PythonOperator(task_id="victim", python_callable=victim, retries=1, retry_delay=0)


# --- execution timeout and cancel ----------------------------------------------------------------
class Sleeper(BaseOperator):
    """Starts a subprocess, sleeps, and leaves a marker when it is told to stop."""

    def execute(self, context: TaskContext) -> Any:
        self.root = _root(context["params"])
        child = subprocess.Popen(["sleep", "60"])
        _write_marker(self.root / f"{self.task_id}.child", str(child.pid))
        _write_marker(self.root / f"{self.task_id}.pid", str(os.getpid()))
        time.sleep(60)
        return "woke up"

    def on_kill(self) -> None:
        (self.root / f"{self.task_id}.on_kill").write_text("called")


with Flow("timeout", params={"root": "."}) as timeout_flow:
    Sleeper(task_id="sleeper", execution_timeout=1.0)

with Flow("cancel", params={"root": "."}) as cancel_flow:
    Sleeper(task_id="sleeper")

with Flow("stubborn", params={"root": "."}) as stubborn_flow:
    # A command in a session of its own that ignores SIGTERM, with a child that does too.
    BashOperator(
        task_id="stubborn",
        bash_command="trap '' TERM; echo $$ > {{ params.root }}/stubborn.pgid; sleep 300; sleep 300",
        execution_timeout=1.0,
    )


# --- which process ran a try ---------------------------------------------------------------------
with Flow("pids") as pids_flow:
    for i in range(4):
        PythonOperator(task_id=f"pid_{i}", python_callable=os.getpid)


# --- long tries: reported started on their own, heartbeats ----------------------------------------
with Flow("slow") as slow_flow:
    PythonOperator(task_id="nap", python_callable=lambda: time.sleep(1.2) or "rested")


# --- the parent-death contract (tests/engine/pool_parent.py) ------------------------------------
def slow(params: Any) -> str:
    time.sleep(2.0)
    (_root(params) / "slow.done").write_text("done")
    return "slow finished"


def must_not_run(params: Any) -> None:
    (_root(params) / "second.ran").write_text("this try should never have started")


with Flow("parent_death", params={"root": "."}) as parent_death:
    PythonOperator(task_id="slow", python_callable=slow)
    PythonOperator(task_id="second", python_callable=must_not_run)


# --- prefetch: tries queued in a worker behind another one ---------------------------------------
def mark(params: Any, task_id: str) -> int:
    """One line per execution (a single appended write, so lines of two workers never mix)."""
    with open(_root(params) / "ran.txt", "a") as file:
        file.write(f"{task_id} {os.getpid()} {time.monotonic()}\n")
    return os.getpid()


def long_nap(params: Any, task_id: str) -> int:
    mark(params, task_id)
    time.sleep(float(params["nap"]))
    return os.getpid()


with Flow("prefetch", params={"root": ".", "nap": 2.0}) as prefetch_flow:
    PythonOperator(task_id="long", python_callable=long_nap)
    for i in range(12):
        PythonOperator(task_id=f"quick_{i}", python_callable=mark)
