"""``ductwork run`` records each try's host and process as a scheduler's workers do: the try's
hostname was the thread's name ("MainThread"), shown as such by the API and the task's page."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path

from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork_process import ductwork_process


def test_ductwork_run_records_the_host_and_pid_of_each_try(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "two.py").write_text(
        textwrap.dedent(
            """
            from ductwork import Flow, PythonOperator

            with Flow("two", schedule=None) as two:
                PythonOperator(task_id="a", python_callable=lambda: 1) >> PythonOperator(task_id="b", python_callable=print)
            """
        )
    )
    env = {"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows")}
    for workers in ("1", "2"):
        done = ductwork_process("run", "two", "--workers", workers, env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    engine = create_engine(f"sqlite:///{tmp_path / 'home' / 'ductwork.db'}")
    try:
        with read_transaction(engine) as conn:
            runs = run_repo.list_runs(conn, flow_id="two", limit=10).items
            instances = [i for r in runs for i in task_repo.list_task_instances(conn, r.pk)]
    finally:
        engine.dispose()
    assert len(instances) == 4
    assert {i.hostname for i in instances} == {socket.gethostname()}
    assert all(isinstance(i.pid, int) and i.pid > 0 for i in instances)
