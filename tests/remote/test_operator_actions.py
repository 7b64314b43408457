"""What an operator does to a run whose tries run on remote workers: clearing a running task
stops its try and runs it again, marking one ends it as marked, cancelling the run stops what
runs. Each acts within seconds (not at the try's end) and runs nothing twice that finished."""

from __future__ import annotations

import json
import time
from pathlib import Path

from dbfixtures import temporary_database
from private_services import private_redis
from tests.remote.support import Cluster, count_effects, wait_for

FLOW = """
with Flow("slow", schedule=None) as slow:
    a = PythonOperator(task_id="a", python_callable=work, op_args=["a"], op_kwargs={"seconds": 0.2})
    b = PythonOperator(task_id="b", python_callable=work, op_args=["b"], op_kwargs={"seconds": 60})
    c = PythonOperator(task_id="c", python_callable=work, op_args=["c"])
    a >> b >> c

with Flow("brief", schedule=None) as brief:
    PythonOperator(task_id="b", python_callable=work, op_args=["b"], op_kwargs={"seconds": 6})
"""


def _states(cluster: Cluster, run_id: str) -> dict[str, str]:
    shown = cluster.cli("tasks", "state", "slow", run_id, "--json")
    if shown.returncode != 0:
        return {}
    return {task: value["state"] for task, value in json.loads(shown.stdout).items()}


def test_clear_mark_and_cancel_act_on_tries_running_remotely(tmp_path: Path) -> None:
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("slow.py", FLOW)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            cluster.worker("w1", concurrency=3)
            for run_id in ("clear", "mark", "cancel"):
                assert cluster.cli("trigger", "slow", "--run-id", run_id).returncode == 0
            for run_id in ("clear", "mark", "cancel"):
                wait_for(
                    lambda r=run_id: _states(cluster, r).get("b") == "running", 90, f"b running in {run_id}", cluster
                )

            # Clear the running b: its try is stopped and b runs again (try 2).
            cleared = cluster.cli("tasks", "clear", "slow", "clear", "b")
            assert cleared.returncode == 0, cleared.stderr
            wait_for(
                lambda: (
                    (lambda s: s.get("b") == "running" and s.get("c") != "success")(_states(cluster, "clear"))
                    and json.loads(cluster.cli("tasks", "state", "slow", "clear", "--json").stdout)["b"]["try_number"]
                    == 2
                ),
                60,
                "b's second try to run",
                cluster,
            )
            # Mark the running b success: the run goes on to c at once.
            marked = cluster.cli("tasks", "mark", "slow", "mark", "b", "--state", "success")
            assert marked.returncode == 0, marked.stderr
            wait_for(lambda: cluster.run_state("slow", "mark") == "success", 60, "the marked run to finish", cluster)
            # Cancel the third run: it ends, and its running try is stopped.
            cancelled = cluster.cli("runs", "cancel", "slow", "cancel")
            assert cancelled.returncode == 0, cancelled.stderr + cluster.logs()
            wait_for(lambda: cluster.run_state("slow", "cancel") == "failed", 60, "the cancelled run to end", cluster)
            wait_for(lambda: _states(cluster, "cancel").get("b") not in ("running", "queued"), 60, "b to stop", cluster)
            # A cancelled run's try is stopped on its worker, not left to run to its end (with
            # several-scheduler leases, a run ended from outside was taken for one taken over).
            assert cluster.cli("trigger", "brief", "--run-id", "cut").returncode == 0

            def cut_running() -> bool:
                shown = cluster.cli("tasks", "state", "brief", "cut", "--json")
                return shown.returncode == 0 and json.loads(shown.stdout)["b"]["state"] == "running"

            wait_for(cut_running, 60, "b running in cut", cluster, interval=0.05)
            assert cluster.cli("runs", "cancel", "brief", "cut").returncode == 0
            time.sleep(8)  # past the 6 s the try would have taken
            effects = count_effects(cluster.effects)
            assert effects.get("cut.b", 0) == 0, effects
            assert "taken over" not in cluster.logs()
            assert effects["mark.c"] == 1 and effects.get("mark.b", 0) == 0, effects
            assert effects.get("cancel.b", 0) == 0 and effects.get("cancel.c", 0) == 0, effects
            assert effects.get("clear.b", 0) == 0, effects  # the first try was stopped before its end
            # The stopped try's log says it was taken away; it said "failed: SystemExit" and "will be
            # retried" (the revoke's SIGTERM taken for the task's own failure, callbacks and all).
            for run_id in ("clear", "cancel"):
                shown = cluster.cli("tasks", "logs", "slow", run_id, "b", "--try", "1")
                assert shown.returncode == 0, shown.stderr
                assert "taken away while it ran" in shown.stdout, shown.stdout
                assert "will be retried" not in shown.stdout and "SystemExit" not in shown.stdout, shown.stdout
        finally:
            cluster.stop_all()
