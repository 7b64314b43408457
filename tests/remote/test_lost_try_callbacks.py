"""A try whose Celery worker died under it (the OOM killer took its pool process, or the whole
worker was killed) never ran its own ``on_retry_callback``/``on_failure_callback``: the
scheduler runs them, as it does for a local worker and as Airflow does. They were never called."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbfixtures import temporary_database
from private_services import private_redis
from tests.remote.support import Cluster, wait_for

FLOW = """
import os, signal, time
from pathlib import Path

def told(kind):
    def callback(context):
        Path(EFFECTS, f"{kind}-callback.{context['ti'].try_number}").write_text(str(context.get("exception")))
    return callback

def fragile(how, ti=None):
    if ti.try_number == 1:
        Path(EFFECTS, "started").write_text(str(os.getpid()))
        if how == "pool process":
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer takes a pool process
        time.sleep(120)  # until the test kills the whole worker
    Path(EFFECTS, f"ran.{ti.try_number}").write_text("ok")

with Flow("fragile", schedule=None) as fragile_flow:
    PythonOperator(
        task_id="load", python_callable=fragile, op_args=[HOW], retries=1, retry_delay=1,
        on_retry_callback=told("retry"), on_failure_callback=told("failure"),
    )
"""


@pytest.mark.parametrize("how", ["pool process", "worker"])
def test_a_try_lost_with_its_worker_gets_its_retry_callback(tmp_path: Path, how: str) -> None:
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url(), extra_env={"DUCTWORK_WORKER_LOST_AFTER": "2"})
        cluster.write_flow("fragile.py", f"HOW = {how!r}\n" + FLOW)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            worker = cluster.worker("w1", concurrency=1)
            done = cluster.cli("trigger", "fragile", "--run-id", "r1")
            assert done.returncode == 0, done.stderr
            wait_for(lambda: (cluster.effects / "started").exists(), 90, "the first try", cluster)
            if how == "worker":
                worker.kill9()
                cluster.worker("w2", concurrency=1)
            wait_for(lambda: cluster.run_state("fragile", "r1") in ("success", "failed"), 120, "the run", cluster)
            assert cluster.run_state("fragile", "r1") == "success", cluster.logs()
            assert (cluster.effects / "ran.2").exists()
            callback = cluster.effects / "retry-callback.1"
            wait_for(callback.exists, 30, "the retry callback of the lost try", cluster)
            assert not list(cluster.effects.glob("failure-callback.*"))
        finally:
            cluster.stop_all()
