"""A scheduler whose output goes to a file, a pipe or a container's log (systemd, `kubectl
logs`, `nohup ... > scheduler.log`) writes one line per log record, each with its full date and
time. Its terminal layout (Rich: 80 columns when there is no terminal, the time left out under
the same second) broke `took over run catch/scheduled__2026-12-06T08:00:00+00:00 (5 tasks)`
across three lines, so a grep for a run id found nothing, and lines without a time could not
be put in order with the workers' logs."""

from __future__ import annotations

import os
import re
import signal
import textwrap
import time
from pathlib import Path

from ductwork_process import ductwork_process, scheduler_process

FLOW = textwrap.dedent(
    """
    from ductwork import Flow, PythonOperator

    with Flow("a_flow_with_a_rather_long_name_for_the_log", schedule=None, start_date="2024-01-01") as f:
        PythonOperator(task_id="work", python_callable=lambda: None)
    """
)
RUN_ID = "manual__a-run-id-long-enough-to-be-wrapped-at-eighty-columns"
LINE = re.compile(
    r"^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}\] (INFO|WARNING|ERROR|DEBUG|CRITICAL) \S+: "
)


def test_a_scheduler_writing_to_a_file_logs_one_whole_line_per_record(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "long.py").write_text(FLOW)
    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'ductwork.db'}",
        "DUCTWORK_METRICS_PORT": "0",
        "COLUMNS": "",
    }
    log = tmp_path / "scheduler.log"
    scheduler = scheduler_process(env, tmp_path, log)
    try:
        flow = "a_flow_with_a_rather_long_name_for_the_log"
        triggered = ductwork_process("trigger", flow, "--run-id", RUN_ID, "--wait", env=env, cwd=tmp_path)
        assert triggered.returncode == 0, triggered.stdout + triggered.stderr + log.read_text()
        deadline = time.monotonic() + 30
        while f"run {flow}/{RUN_ID}" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(timeout=60)
    finally:
        if scheduler.poll() is None:
            os.killpg(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
    text = log.read_text()
    records = [line for line in text.splitlines() if LINE.match(line)]
    assert any(f"started run {flow}/{RUN_ID} (1 tasks)" in line for line in records), text
    assert any("received SIGTERM: stopping" in line for line in records), text
    # Every line after the banner is a whole record (no continuation lines, no line without a time).
    after_banner = text.splitlines()[1:]
    strays = [line for line in after_banner if line.strip() and not LINE.match(line)]
    assert strays == [], text
