"""The log folder's disk fills up while a try under the scheduler writes its output. The README
promises that the log is cut where it filled and the try and the run go on (``ductwork run``
did so); under the scheduler the pool process writing the staged log died with ENOSPC: the try
was failed and charged ("worker pid N exited with code 1"), its downstream upstream_failed.
(A try that cannot write its log's first line has not begun: it waits for room, uncharged.)"""

from __future__ import annotations

import json
from pathlib import Path

from ductwork_process import ductwork_process, scheduler_process, stop_process
from faultfs import small_disk

CHATTY = """
from ductwork import Flow, PythonOperator


def talk():
    for i in range(3000):
        print(f"line {i:05d} " + "x" * 190)
    return "said"


with Flow("chatty", schedule=None) as flow:
    PythonOperator(task_id="talk", python_callable=talk)
"""


def test_a_log_disk_that_fills_during_a_try_cuts_the_log_and_the_run_goes_on(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "chatty.py").write_text(CHATTY)
    with small_disk(tmp_path / "logs", size="1m") as disk:
        (disk.path / "filler").write_bytes(b"\0" * 900_000)  # room for the first lines only
        env = {
            "DUCTWORK_HOME": str(tmp_path / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'ductwork.db'}",
            "DUCTWORK_LOG_DIR": str(disk.path),
        }
        assert ductwork_process("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        scheduler = scheduler_process(env, tmp_path, tmp_path / "scheduler.log")
        try:
            done = ductwork_process("trigger", "chatty", "--run-id", "r1", "--wait", env=env, cwd=tmp_path, timeout=180)
        finally:
            stop_process(scheduler)
        shown = ductwork_process("runs", "show", "chatty", "r1", "--json", env=env, cwd=tmp_path)
    log = (tmp_path / "scheduler.log").read_text(errors="replace")
    assert done.returncode == 0, done.stdout + done.stderr + log[-3000:]
    tasks = {t: i["state"] for t, i in json.loads(shown.stdout)["tasks"].items()}
    assert tasks == {"talk": "success"}, tasks  # the next try waits for room, as at a full disk before
    assert "exited with code" not in log and "Traceback" not in log, log[-3000:]
