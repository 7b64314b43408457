"""`ductwork run` on a full DUCTWORK_HOME (a small volume, a log folder that filled the disk):
the run's journal cannot be written. It was a traceback (OSError: No space left on device) that
left the run recorded `running` for ever; it is a one-line error naming the folder, and the run is
recorded failed."""

from __future__ import annotations

import json
from pathlib import Path

from ductwork_process import ductwork_process
from faultfs import small_disk

FLOW = """
from ductwork import Flow, PythonOperator

with Flow("tiny") as flow:
    PythonOperator(task_id="hello", python_callable=lambda: print("hello"))
"""


def test_a_run_on_a_full_home_says_so_and_is_recorded_failed(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "tiny.py").write_text(FLOW)
    with small_disk(tmp_path / "home", size="256k") as disk:
        env = {
            "DUCTWORK_HOME": str(tmp_path / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
            "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'ductwork.db'}",
        }
        disk.fill()
        ran = ductwork_process("run", "tiny", "--no-progress", env=env, cwd=tmp_path)
        assert ran.returncode == 2, ran.stdout + ran.stderr
        assert "Traceback" not in ran.stderr, ran.stderr
        assert "cannot write the run's journal in" in ran.stderr and "No space left on device" in ran.stderr
        disk.free()
        listed = ductwork_process("runs", "list", "tiny", "--json", env=env, cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        assert [r["state"] for r in json.loads(listed.stdout)["runs"]] == ["failed"]


def test_a_command_that_writes_to_a_database_on_a_full_disk_says_so_in_one_line(tmp_path: Path) -> None:
    """With the database open already (a scheduler holds it, so its WAL files exist), a command's
    write failed at the commit with SQLite's 'database or disk is full' as a traceback."""
    import sqlite3

    with small_disk(tmp_path / "home", size="1m") as disk:
        env = {"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_FLOWS_FOLDER": str(tmp_path)}
        assert ductwork_process("db", "init", env=env, cwd=tmp_path).returncode == 0
        holder = sqlite3.connect(tmp_path / "home" / "ductwork.db")
        try:
            holder.execute("select count(*) from variables").fetchall()  # WAL files stay while it is open
            disk.fill()
            done = ductwork_process("variables", "set", "colour", "blue", env=env, cwd=tmp_path)
        finally:
            holder.close()
        assert done.returncode == 2, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        assert "the metadata database cannot be written (database or disk is full)" in done.stderr
        assert "nothing of this command was recorded" in done.stderr
