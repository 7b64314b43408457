"""Several tries to a Celery message (``ductwork.run_tries``): when a scheduler hands over more
tries than a queue has slots, they travel in batches that one pool process runs in turn. The
user-visible guarantees are those of single tries: each task runs once, a pool process killed
mid-batch costs only the try it was running (failed or retried by its policy; the batch's later
tries run elsewhere), and a batch that runs long hands its unstarted tries back to the queue."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from dbfixtures import temporary_database
from private_services import private_redis
from tests.remote.support import Cluster, count_effects, wait_for

QUICK = """
with Flow("quick", schedule=None) as quick:
    for i in range(40):
        PythonOperator(task_id=f"t{i}", python_callable=work, op_args=[f"t{i}"])
"""

SLOW = """
with Flow("slow", schedule=None, default_args={"retries": 1, "retry_delay": 0}) as slow:
    for i in range(12):
        PythonOperator(
            task_id=f"t{i}", python_callable=work, op_args=[f"t{i}"], op_kwargs={"seconds": 0.4}
        )
"""


def _current_of(cluster: Cluster, name: str) -> dict[str, Any] | None:
    """The worker's row in ``ductwork workers list`` when it shows a current try."""
    listed = json.loads(cluster.cli("workers", "list", "--json").stdout)["workers"]
    row = next((w for w in listed if w["name"].split("@")[0] == name), None)
    return row if row is not None and row["current"] else None


def _quick_fan_out(tmp_path: Path, env: dict[str, str]) -> tuple[Counter[str], str, dict[str, Any]]:
    """QUICK's 40 tasks on one worker of 2 slots: the executions per task (side effects), the
    worker's log, and the tasks' states as `ductwork tasks state` shows them."""
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url(), extra_env=env)
        cluster.write_flow("quick.py", QUICK)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            worker = cluster.worker("w1", concurrency=2)
            assert cluster.cli("trigger", "quick", "--run-id", "r1").returncode == 0
            wait_for(lambda: cluster.run_state("quick", "r1") == "success", 120, "the run to succeed", cluster)
            shown = json.loads(cluster.cli("tasks", "state", "quick", "r1", "--json").stdout)
            return count_effects(cluster.effects), worker.output(), shown
        finally:
            cluster.stop_all()


def test_a_fan_out_travels_in_batches_and_runs_each_task_once(tmp_path: Path) -> None:
    effects, output, shown = _quick_fan_out(tmp_path, {})
    assert {f"r1.t{i}" for i in range(40)} == set(effects), effects
    assert set(effects.values()) == {1}, effects
    assert "ductwork.run_tries[batch:" in output, "no try travelled in a batch"
    assert {value["state"] for value in shown.values()} == {"success"}


def test_a_pool_process_killed_mid_batch_costs_only_its_running_try(tmp_path: Path) -> None:
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("slow.py", SLOW)
        engine = sa.create_engine(db_url, poolclass=sa.NullPool)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            worker = cluster.worker("w1", concurrency=1)
            assert cluster.cli("trigger", "slow", "--run-id", "r1").returncode == 0

            def running() -> tuple[str, int] | None:
                """A try well into its 0.4 s (not at its claim, not about to end)."""
                with engine.connect() as conn:
                    row = conn.execute(
                        sa.text(
                            "SELECT task_id, pid FROM task_instances WHERE state = 'running' AND pid IS NOT NULL "
                            "AND start_date < now() - interval '50 milliseconds' "
                            "AND start_date > now() - interval '200 milliseconds'"
                        )
                    ).first()
                return (row.task_id, row.pid) if row is not None else None

            # One slot runs a batch of tries in turn: only the running one is the worker's current try.
            row = wait_for(lambda: _current_of(cluster, "w1"), 30, "a current try on w1", cluster, 0.05)
            assert len(row["current"]) == 1 and row["slots_used"] == 1, row

            # A try of the batch is running: kill its pool process.
            found = wait_for(
                lambda: len(count_effects(cluster.effects)) >= 1 and running(), 60, "a second try", cluster, 0.01
            )
            victim, pid = found
            os.kill(pid, signal.SIGKILL)

            wait_for(lambda: cluster.run_state("slow", "r1") == "success", 120, "the run to succeed", cluster)
            effects = count_effects(cluster.effects)
            assert {f"r1.t{i}" for i in range(12)} == set(effects), effects
            assert set(effects.values()) == {1}, effects  # the killed try wrote nothing; its retry once
            shown = json.loads(cluster.cli("tasks", "state", "slow", "r1", "--json").stdout)
            assert shown[victim]["try_number"] == 2, shown[victim]
            others = {task: value["try_number"] for task, value in shown.items() if task != victim}
            assert set(others.values()) == {1}, others  # the batch's later tries were not failed with it
            output = worker.output()
            assert "ductwork.run_tries[batch:" in output
            assert "handed back" in output or "sent it again" in output, output[-3000:]
        finally:
            cluster.stop_all()
            engine.dispose()


def test_tries_per_message_one_sends_every_try_alone(tmp_path: Path) -> None:
    effects, output, _ = _quick_fan_out(tmp_path, {"DUCTWORK_TRIES_PER_MESSAGE": "1"})
    assert len(effects) == 40 and set(effects.values()) == {1}, effects
    assert "ductwork.run_try[" in output and "ductwork.run_tries[" not in output
