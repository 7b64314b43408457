"""A running try's rendered fields are recorded when its start is, not only at its end: the web
UI's task page said "not rendered yet" for the whole of a long first try (Airflow shows the
rendered command of a running task), both in a scheduler's worker and in ``ductwork run``."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork_process import ductwork_command, ductwork_process, process_env, scheduler_process

FLOW = textwrap.dedent(
    """
    from pathlib import Path
    from ductwork import BashOperator, Flow

    OUT = Path(__file__).parent.parent / "out"

    with Flow("slow", schedule=None, start_date="2024-01-01", params={"table": "orders"}) as slow:
        BashOperator(task_id="load", bash_command=f"{SLOW}touch {OUT}/started; sleep 30 # load {{{{ params.table }}}}")
    """
)
SLOW_RENDER = "{% for i in range(1000) %}{% for j in range(300) %}{% endfor %}{% endfor %}"
"""Rendering that takes longer than a worker waits before it reports a try started (10 ms): the
fields then follow the start in a message of their own."""


def _running_try(database: Path, proc: subprocess.Popen[bytes], log: Path | None) -> Any:
    """The try of ``load`` once it has been running for a while (recorded running)."""
    engine = create_engine(f"sqlite:///{database}")
    deadline = time.monotonic() + 60
    try:
        while True:
            assert proc.poll() is None, log.read_text() if log is not None else ""
            assert time.monotonic() < deadline, "the try was never recorded with its rendered fields"
            if (database.parent / "out" / "started").exists():  # the database is made by then
                with read_transaction(engine) as conn:
                    runs = run_repo.list_runs(conn, flow_id="slow").items
                    tries = task_repo.list_tries(conn, runs[0].pk, "load") if runs else []
                if tries and tries[0].rendered is not None:
                    return tries[0]
            time.sleep(0.1)
    finally:
        engine.dispose()


def _setup(tmp_path: Path, slow_render: bool = False) -> dict[str, str]:
    (tmp_path / "flows").mkdir()
    (tmp_path / "out").mkdir()
    slow = f"SLOW = {SLOW_RENDER!r}" if slow_render else "SLOW = ''"
    (tmp_path / "flows" / "slow.py").write_text(
        FLOW.replace("from ductwork import BashOperator, Flow", f"from ductwork import BashOperator, Flow\n{slow}")
    )
    return {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'ductwork.db'}",
        "DUCTWORK_METRICS_PORT": "0",
    }


@pytest.mark.parametrize("slow_render", [False, True], ids=["quick-render", "slow-render"])
def test_a_scheduler_records_the_rendered_fields_of_a_running_try(tmp_path: Path, slow_render: bool) -> None:
    env = _setup(tmp_path, slow_render)
    log = tmp_path / "scheduler.log"
    scheduler = scheduler_process(env, tmp_path, log)
    try:
        triggered = ductwork_process("trigger", "slow", "-p", "table=customers", env=env, cwd=tmp_path)
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr
        attempt = _running_try(tmp_path / "ductwork.db", scheduler, log)
    finally:
        os.killpg(scheduler.pid, signal.SIGKILL)
        scheduler.wait()
        subprocess.run(["pkill", "-f", f"touch {tmp_path}/out/started"], check=False)
    assert attempt.state.value == "running"
    assert attempt.rendered["bash_command"].startswith("touch ")
    assert attempt.rendered["bash_command"].endswith("sleep 30 # load customers")


def test_ductwork_run_records_the_rendered_fields_of_a_running_try(tmp_path: Path) -> None:
    env = _setup(tmp_path)
    proc = subprocess.Popen(
        ductwork_command("run", "slow", "-p", "table=invoices", "--no-progress"),
        env=process_env(env),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        attempt = _running_try(tmp_path / "ductwork.db", proc, None)
    finally:
        proc.kill()
        proc.wait()
    assert attempt.state.value == "running"
    assert attempt.rendered["bash_command"].endswith("sleep 30 # load invoices")
