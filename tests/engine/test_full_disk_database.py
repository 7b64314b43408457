"""A scheduler whose SQLite database sits on a disk that fills up: the database answers every
read and refuses every write. The scheduler took a successful ``SELECT 1`` for the outage's end,
so its log said "answers again" and "unreachable" twice a second for as long as the disk stayed
full, and called the full disk "unreachable". It says the outage once, as a full disk, waits
with its backoff, and goes on when space comes back."""

from __future__ import annotations

import threading
from pathlib import Path

from ductwork_process import ductwork_process, scheduler_process, stop_process
from faultfs import small_disk
from tests.remote.support import wait_for

FLOW = """
from ductwork import Flow, PythonOperator

with Flow("often", schedule="* * * * *", catchup=False) as flow:
    PythonOperator(task_id="a", python_callable=lambda: print("x" * 1000))
"""


def _wait_for(log: Path, text: str, seconds: float) -> None:
    wait_for(lambda: text in log.read_text(errors="replace"), seconds, f"{text!r} in the scheduler's log")


def test_a_full_disk_is_one_outage_said_as_such_not_a_flapping_one(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "often.py").write_text(FLOW)
    home = tmp_path / "home"
    log = tmp_path / "scheduler.log"
    with small_disk(home, size="2m") as disk:
        env = {
            "DUCTWORK_HOME": str(home),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_DATABASE_URL": f"sqlite:///{home / 'ductwork.db'}",
        }
        assert ductwork_process("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
        scheduler = scheduler_process(env, tmp_path, log)
        try:
            _wait_for(log, "scheduler started", 60)
            disk.fill()
            for _ in range(3):  # writes the scheduler must make: runs to record
                ductwork_process("trigger", "often", env=env, cwd=tmp_path)
            _wait_for(log, "cannot write (its disk is full)", 60)
            threading.Event().wait(8)  # the time in which it flapped some 16 times
            during = log.read_text(errors="replace")
            disk.free()
            _wait_for(log, "the database answers again", 60)
        finally:
            stop_process(scheduler)
    assert during.count("cannot write (its disk is full)") <= 2, during  # the outage, and at most one "still"
    assert "answers again" not in during, during
