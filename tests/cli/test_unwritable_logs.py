"""``ductwork run`` and ``ductwork build`` with a try log folder (``log_dir``) that cannot be
written: read-only, or on a full disk. The first try's log file failed inside the run loop: the
run stopped, its tasks were recorded failed though they had run or never started ("has not run
yet"), and the error blamed the metadata database (read-only) or DUCTWORK_HOME (full). The run
now goes on without log files, says so in one line, and is recorded as it went."""

from __future__ import annotations

import json
from pathlib import Path

from ductwork_process import ductwork_process
from faultfs import bind_mount, small_disk

FLOW = """
from ductwork import Flow, PythonOperator

with Flow("tiny") as flow:
    PythonOperator(task_id="hello", python_callable=lambda: print("hello"))
"""


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "flows").mkdir(exist_ok=True)
    (tmp_path / "flows" / "tiny.py").write_text(FLOW)
    return {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "DUCTWORK_LOG_DIR": str(tmp_path / "logs"),
    }


def _recorded(tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    listed = ductwork_process("runs", "list", "tiny", "--json", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (run,) = json.loads(listed.stdout)["runs"]
    assert run["state"] == "success"
    tasks = ductwork_process("tasks", "state", "tiny", run["run_id"], "--json", env=env, cwd=tmp_path)
    assert tasks.returncode == 0, tasks.stderr
    return {task: t["state"] for task, t in json.loads(tasks.stdout).items()}


def test_a_run_with_a_read_only_log_folder_says_so_and_is_recorded(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with bind_mount(tmp_path / "logs-source", tmp_path / "logs") as logs:
        logs.read_only(True)
        try:
            ran = ductwork_process("run", "tiny", "--no-progress", env=env, cwd=tmp_path)
        finally:
            logs.read_only(False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr
    warned = [line for line in ran.stderr.splitlines() if "try logs cannot be written" in line]
    assert warned == [
        f"warning: the try logs cannot be written in {tmp_path / 'logs'} (Read-only file system): "
        "this run goes on and is recorded, without its try logs"
    ]
    assert "no try logs kept" in ran.stdout
    assert _recorded(tmp_path, env) == {"hello": "success"}


def test_a_run_with_its_log_folder_on_a_full_disk_says_so_and_is_recorded(tmp_path: Path) -> None:
    env = _env(tmp_path)
    with small_disk(tmp_path / "logs", size="256k") as disk:
        disk.fill()
        ran = ductwork_process("run", "tiny", "--no-progress", "--json", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "Traceback" not in ran.stderr, ran.stderr
    assert "try logs cannot be written in" in ran.stderr and "No space left on device" in ran.stderr
    assert json.loads(ran.stdout)["state"] == "success"
    assert _recorded(tmp_path, env) == {"hello": "success"}


LOUD = """
from ductwork import Flow, PythonOperator

def loud():
    for _ in range(1000):
        print("x" * 100)

with Flow("loud") as flow:
    PythonOperator(task_id="loud", python_callable=loud) >> PythonOperator(
        task_id="after", python_callable=lambda: print("after")
    )
"""


def test_a_log_disk_that_fills_during_the_run_truncates_the_log_and_the_run_goes_on(tmp_path: Path) -> None:
    """The folder passes the check before the run, and fills while a try writes 100 KB: that
    try's log is cut where the disk filled, the run goes on, and every task is recorded as it
    ended (the error stopped the run, every task recorded failed, "no space left" naming no
    folder)."""
    env = _env(tmp_path)
    (tmp_path / "flows" / "loud.py").write_text(LOUD)
    with small_disk(tmp_path / "logs", size="256k") as disk:
        (disk.path / ".filler").write_bytes(b"\0" * 180_000)
        ran = ductwork_process("run", "loud", "--no-progress", "--json", env=env, cwd=tmp_path)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "Traceback" not in ran.stderr, ran.stderr
        assert json.loads(ran.stdout)["state"] == "success"
        warned = [line for line in ran.stderr.splitlines() if "could not write the try log" in line]
        assert warned and all("No space left on device" in line for line in warned), ran.stderr
        assert str(tmp_path / "logs") in warned[0] and "loud.1.log" in warned[0]
        listed = ductwork_process("runs", "list", "loud", "--json", env=env, cwd=tmp_path)
        (run,) = json.loads(listed.stdout)["runs"]
        tasks = ductwork_process("tasks", "state", "loud", run["run_id"], "--json", env=env, cwd=tmp_path)
        assert {t: s["state"] for t, s in json.loads(tasks.stdout).items()} == {"loud": "success", "after": "success"}
        shown = ductwork_process("tasks", "logs", "loud", run["run_id"], "loud", env=env, cwd=tmp_path)
        assert shown.returncode == 0 and "x" * 100 in shown.stdout  # what fitted is kept
