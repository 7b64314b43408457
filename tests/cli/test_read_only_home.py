"""Commands that read flows through the CLI's flow index (`trigger`, `flows show`, `backfill`)
work on a read-only DUCTWORK_HOME: the index is a cache, and a home it cannot write costs only
speed. `ductwork trigger` was a FileNotFoundError traceback there: the graph it had just parsed
was read back from a cache file that could not be written."""

from __future__ import annotations

import json
from pathlib import Path

from ductwork_process import ductwork_process
from faultfs import bind_mount

FLOW = """
from ductwork import Flow, PythonOperator

with Flow("tiny", schedule="@daily", start_date="2024-01-01") as flow:
    PythonOperator(task_id="hello", python_callable=lambda: print("hello"))
"""


def test_trigger_and_show_work_on_a_read_only_home(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "tiny.py").write_text(FLOW)
    with bind_mount(tmp_path / "home-source", tmp_path / "home") as home:
        env = {
            "DUCTWORK_HOME": str(tmp_path / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
            "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'ductwork.db'}",
        }
        home.read_only(True)
        try:
            shown = ductwork_process("flows", "show", "tiny", env=env, cwd=tmp_path)
            assert shown.returncode == 0, shown.stderr
            assert "hello" in shown.stdout
            triggered = ductwork_process("trigger", "tiny", "--json", env=env, cwd=tmp_path)
            assert triggered.returncode == 0, triggered.stdout + triggered.stderr
            assert "Traceback" not in triggered.stderr
            assert json.loads(triggered.stdout)["state"] == "queued"
            # a command that must write there (its journal) says so in one line
            ran = ductwork_process("run", "tiny", "--no-progress", env=env, cwd=tmp_path)
            assert ran.returncode == 2, ran.stdout + ran.stderr
            assert "Traceback" not in ran.stderr, ran.stderr
            assert f"cannot write the run's journal in {tmp_path / 'home'}" in ran.stderr
        finally:
            home.read_only(False)


def test_a_home_that_cannot_be_made_is_one_line_naming_it(tmp_path: Path) -> None:
    """`--home /var/lib/ductwork` without the right to make it (here: a folder under /proc,
    where no one can) was a FileNotFoundError or PermissionError traceback from the store."""
    (tmp_path / "flow.py").write_text(FLOW)
    env = {"DUCTWORK_HOME": "/proc/ductwork-no-home-here"}
    for args in (["runs", "list"], ["run", "flow.py:tiny", "--no-progress"]):
        done = ductwork_process(*args, env=env, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stdout + done.stderr)
        assert "Traceback" not in done.stderr, done.stderr
        assert "Error: the Ductwork home '/proc/ductwork-no-home-here' cannot be used" in done.stderr, done.stderr
