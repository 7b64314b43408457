"""A scheduled flow whose runs cannot be created (a required parameter without a default) is
said once by the scheduler, not at every poll: it filled the log twice a second, for ever."""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

from ductwork_process import scheduler_process

FLOW = textwrap.dedent(
    """
    from ductwork import Flow, PythonOperator
    from ductwork.core.params import IntParameter

    with Flow("needs_x", schedule="@daily", start_date="2024-01-01", catchup=False,
              params={"x": IntParameter()}) as f:
        PythonOperator(task_id="work", python_callable=lambda: None)
    """
)


def _scheduler_log(tmp_path: Path, flows_folder: Path, until: str, *, then: float = 0.0) -> str:
    """The log of a scheduler on ``flows_folder``, stopped ``then`` seconds after ``until`` showed."""
    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(flows_folder),
        "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'ductwork.db'}",
        "DUCTWORK_METRICS_PORT": "0",
    }
    log = tmp_path / "scheduler.log"
    scheduler = scheduler_process(env, tmp_path, log)
    try:
        deadline = time.monotonic() + 60
        while until not in log.read_text():
            assert time.monotonic() < deadline and scheduler.poll() is None, log.read_text()
            time.sleep(0.2)
        time.sleep(then)
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=60)
    finally:
        if scheduler.poll() is None:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
    return log.read_text()


def test_a_scheduled_run_that_cannot_be_created_is_said_once(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "needs_x.py").write_text(FLOW)
    text = _scheduler_log(tmp_path, tmp_path / "flows", "could not create the run", then=4.0)  # polls more
    said = [line for line in text.splitlines() if "could not create the run" in line]
    assert len(said) == 1, text
    assert "needs_x" in said[0] and "'x'" in said[0], said


def test_a_flows_folder_that_is_a_file_is_said_to_be_one(tmp_path: Path) -> None:
    """``DUCTWORK_FLOWS_FOLDER=flows/etl.py`` was said not to exist, which sent people looking
    for a missing path."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "needs_x.py").write_text(FLOW)
    text = _scheduler_log(tmp_path, tmp_path / "flows" / "needs_x.py", "scheduler started")
    assert "needs_x.py is a file, not a folder" in text and "to the folder that holds it" in text, text
