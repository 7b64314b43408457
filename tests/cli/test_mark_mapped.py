"""Marking a failed mapped instance by hand, as an operator does after fixing its data by
other means: the mapped task follows its instances (``work`` was left failed, "1 of its 3
mapped instances failed", and ``total`` stayed upstream_failed through any clear), and the
downstream task, once cleared, runs with the values the instances that ran returned, as in
Airflow. Each command is a ``ductwork`` process, as a user types it."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

from ductwork_process import ductwork_process, scheduler_process, stop_process

FLOW = textwrap.dedent(
    """
    import os
    from pathlib import Path
    from ductwork import Flow, task

    @task
    def items():
        return [1, 2, 3]

    @task
    def work(x):
        if x == 2:
            raise ValueError("two is bad")
        return x * 10

    @task
    def total(values):
        Path(os.environ["TOTAL_FILE"]).write_text(str(sum(values)))
        return sum(values)

    with Flow("mapped", schedule=None) as mapped:
        total(work.expand(x=items()))
    """
)


def _states(env: dict[str, str], cwd: Path, run_id: str) -> dict[str, str]:
    done = ductwork_process("tasks", "state", "mapped", run_id, "--json", env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return {task: info["state"] for task, info in json.loads(done.stdout).items()}


def test_a_failed_mapped_instance_marked_success_lets_its_downstream_run_again(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "mapped.py").write_text(FLOW)
    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path / "flows"),
        "TOTAL_FILE": str(tmp_path / "total.txt"),
    }
    ran = ductwork_process("run", "mapped", env=env, cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr
    listed = ductwork_process("runs", "list", "mapped", "--json", env=env, cwd=tmp_path)
    (run_id,) = [r["run_id"] for r in json.loads(listed.stdout)["runs"]]
    before = _states(env, tmp_path, run_id)
    assert before["work[1]"] == "failed" and before["work"] == "failed" and before["total"] == "upstream_failed"

    marked = ductwork_process("tasks", "mark", "mapped", run_id, "work[1]", "--state", "success", env=env, cwd=tmp_path)
    assert marked.returncode == 0, marked.stderr
    assert "work[1], work" in marked.stdout  # the mapped task followed, and the command says so
    after = _states(env, tmp_path, run_id)
    assert after["work"] == "success" and after["total"] == "upstream_failed"  # as Airflow: clear it to run it

    assert ductwork_process("tasks", "clear", "mapped", run_id, "total", env=env, cwd=tmp_path).returncode == 0
    scheduler = scheduler_process(env, tmp_path, tmp_path / "scheduler.log")
    try:
        deadline = time.monotonic() + 60
        while _states(env, tmp_path, run_id)["total"] != "success":
            assert time.monotonic() < deadline, (tmp_path / "scheduler.log").read_text()[-3000:]
            time.sleep(0.3)
    finally:
        stop_process(scheduler)
    assert (tmp_path / "total.txt").read_text() == "40"  # 10 + 30: the marked instance returned nothing
    shown = ductwork_process("runs", "show", "mapped", run_id, "--json", env=env, cwd=tmp_path)
    assert json.loads(shown.stdout)["state"] == "success"

    # Marked failed again: the mapped task follows back.
    again = ductwork_process("tasks", "mark", "mapped", run_id, "work[0]", "--state", "failed", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert _states(env, tmp_path, run_id)["work"] == "failed"
