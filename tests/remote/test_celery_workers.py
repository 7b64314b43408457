"""Flows run by ``ductwork worker`` processes over real brokers (Redis and RabbitMQ), with the
scheduler and the workers as separate processes that share only the database, the broker and
the remote log store; one worker runs in a network namespace of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from dbfixtures import temporary_database
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from private_services import private_rabbitmq, private_redis
from tests.remote.support import Cluster, count_effects, wait_for

FAN = """
from ductwork import task

def pull_and_check(ti=None, run_id=None):
    values = ti.xcom_pull(task_ids=[f"b{i}" for i in range(4)])
    assert len(values) == 4 and all(isinstance(v, int) for v in values), values
    return work("c", run_id=run_id)

with Flow("fan", schedule=None) as fan:
    a = PythonOperator(task_id="a", python_callable=work, op_args=["a"], op_kwargs={"seconds": 0.3})
    bs = [PythonOperator(task_id=f"b{i}", python_callable=work, op_args=[f"b{i}"]) for i in range(4)]
    c = PythonOperator(task_id="c", python_callable=pull_and_check)
    a >> bs
    for b in bs:
        b >> c

with Flow("gpu_only", schedule=None) as gpu_only:
    PythonOperator(task_id="train", python_callable=work, op_args=["train"], queue="gpu")
"""


BROKEN_ON_WORKERS = """
import os
if os.environ["DUCTWORK_FLOWS_FOLDER"].endswith("no-flows-here"):  # true on the workers only
    import module_only_on_the_scheduler_host  # noqa: F401

with Flow("fragile_import", schedule=None) as fragile_import:
    PythonOperator(task_id="only", python_callable=work, op_args=["only"])
"""


def _run_state(db_url: str, flow_id: str) -> str | None:
    engine = create_engine(db_url)
    try:
        with read_transaction(engine) as conn:
            runs = run_repo.list_runs(conn, flow_id=flow_id, limit=5).items
        return runs[0].state.value if runs else None
    finally:
        engine.dispose()


def _scenario(tmp_path: Path, broker_url: str, *, bad_bundle: bool = False) -> None:
    with temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, broker_url)
        cluster.write_flow("fan.py", FAN)
        if bad_bundle:
            cluster.write_flow("fragile.py", BROKEN_ON_WORKERS)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            w1 = cluster.worker("w1", concurrency=2)
            cluster.worker("w2", concurrency=2)
            done = cluster.cli("trigger", "fan", "--run-id", "r1")
            assert done.returncode == 0, done.stderr
            wait_for(lambda: _run_state(db_url, "fan") in ("success", "failed"), 90, "the run to end", cluster)
            assert _run_state(db_url, "fan") == "success", cluster.logs()
            effects = count_effects(cluster.effects)
            assert effects == {f"r1.{t}": 1 for t in ["a", "b0", "b1", "b2", "b3", "c"]}, effects
            engine = create_engine(db_url)
            with read_transaction(engine) as conn:
                run = run_repo.get_run(conn, "fan", "r1")
                assert run is not None
                instances = task_repo.list_task_instances(conn, run.pk)
            engine.dispose()
            assert {ti.hostname.split("@")[0] for ti in instances} <= {"w1", "w2"}
            logs = cluster.cli("tasks", "logs", "fan", "r1", "b2")
            assert logs.returncode == 0, logs.stderr
            assert "working on b2" in logs.stdout
            # A task's log records too (INFO, as in Airflow), and nothing of the tries the same
            # worker process ran before or after it.
            for task_id in ["a", "b0", "b1", "b2", "b3"]:
                shown = cluster.cli("tasks", "logs", "fan", "r1", task_id).stdout
                assert f"logged by {task_id}" in shown, shown
                assert shown.count("logged by") == 1 and shown.count("working on") == 1, shown
            listed = json.loads(cluster.cli("workers", "list", "--json").stdout)
            names = {w["name"].split("@")[0]: w for w in listed["workers"]}
            assert set(names) == {"w1", "w2"} and names["w1"]["queues"] == ["default"]
            assert all(w["state"] == "running" for w in names.values())
            # Plain Celery: its own tools see the workers.
            inspect = subprocess.run(
                [sys.executable, "-m", "celery", "-b", broker_url, "inspect", "ping", "--timeout", "5"],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert names["w1"]["name"] in inspect.stdout and names["w2"]["name"] in inspect.stdout, inspect

            # A queue no worker listens on: its tries wait, and the CLI says why.
            assert cluster.cli("trigger", "gpu_only", "--run-id", "g1").returncode == 0
            wait_for(
                lambda: "gpu" in json.loads(cluster.cli("workers", "list", "--json").stdout)["unserved_queues"],
                30,
                "the gpu queue to be reported",
                cluster,
            )
            text = cluster.cli("workers", "list").stdout
            assert "queue 'gpu'" in text and "no live worker listens on it" in text
            cluster.worker("g", queues="gpu", concurrency=1)
            wait_for(lambda: _run_state(db_url, "gpu_only") == "success", 60, "the gpu run", cluster)
            assert count_effects(cluster.effects)["g1.train"] == 1
            assert w1.alive()
            if bad_bundle:  # the code imports on the scheduler's host and not on the workers'
                assert cluster.cli("trigger", "fragile_import", "--run-id", "f1").returncode == 0
                wait_for(lambda: _run_state(db_url, "fragile_import") == "failed", 60, "the run to fail", cluster)
                state = json.loads(cluster.cli("tasks", "state", "fragile_import", "f1", "--json").stdout)
                assert state["only"]["state"] == "failed"
                shown = cluster.cli("tasks", "logs", "fragile_import", "f1", "only").stdout
                assert "could not load task 'only'" in shown
                assert "No module named 'module_only_on_the_scheduler_host'" in shown
                # The worker's own log says it too (Celery's line for the message says "succeeded").
                said = "".join(p.output() for p in cluster.procs)
                assert "fragile_import/f1 only #1 ended failed: could not load task" in said, cluster.logs()
                assert w1.alive()
        finally:
            cluster.stop_all()


def test_flows_run_on_celery_workers_over_redis(tmp_path: Path) -> None:
    with private_redis() as redis:
        _scenario(tmp_path, redis.url(), bad_bundle=True)


def test_flows_run_on_celery_workers_over_rabbitmq(tmp_path: Path) -> None:
    with private_rabbitmq() as rabbit:
        _scenario(tmp_path, rabbit.url())


def test_a_worker_in_its_own_network_namespace_runs_tries_over_the_link(tmp_path: Path) -> None:
    """The worker host reaches PostgreSQL and Redis only over a veth pair; it has its own home,
    working and temporary folders, and no flows folder: the code comes as a bundle."""
    from private_services import private_open_redis, private_postgres
    from tests.remote.support import test_host

    with test_host() as link, private_open_redis(link.host_ip) as redis, private_postgres(host=link.host_ip) as pg:
        with (pg.data / "pg_hba.conf").open("a") as hba:
            hba.write(f"host all all {link.host_ip}/32 trust\nhost all all {link.ns_ip}/32 trust\n")
        pg.restart()
        db_url = pg.create_database("ductwork_netns")
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("fan.py", FAN)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            remote = cluster.worker("far", concurrency=3, netns=link.netns)
            assert cluster.cli("trigger", "fan", "--run-id", "r1").returncode == 0
            wait_for(lambda: _run_state(db_url, "fan") in ("success", "failed"), 90, "the run to end", cluster)
            assert _run_state(db_url, "fan") == "success", cluster.logs()
            assert count_effects(cluster.effects) == {f"r1.{t}": 1 for t in ["a", "b0", "b1", "b2", "b3", "c"]}
            assert "working on c" in cluster.cli("tasks", "logs", "fan", "r1", "c").stdout
            bundles = list((cluster.root / "worker-far" / "home" / "bundles").iterdir())
            assert [b for b in bundles if not b.name.startswith(".")], "the worker unpacked no bundle"
            assert remote.alive()
        finally:
            cluster.stop_all()


SLOW = """
with Flow("slow", schedule=None) as slow:
    PythonOperator(task_id="long", python_callable=work, op_args=["long"], op_kwargs={"seconds": 10})
"""


def _long_is(cluster: Cluster, state: str) -> bool:
    """Whether the task ``long`` of the run ``slow``/``r1`` is in ``state``."""
    shown = cluster.cli("tasks", "state", "slow", "r1", "--json")
    return shown.returncode == 0 and json.loads(shown.stdout)["long"]["state"] == state


def test_a_worker_told_to_stop_finishes_its_running_try_and_the_try_counts(tmp_path: Path) -> None:
    """SIGTERM to a worker (a rolling update, a scale-in) lets its running try finish, as README
    and the manifests say; its heartbeats went on a timer that stopped with the consumer, so the
    scheduler judged the worker lost after ``worker_lost_after`` (4 s here) and failed the try
    that then finished anyway."""
    import os
    import signal

    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("slow.py", SLOW)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            worker = cluster.worker("w1", concurrency=1)
            assert cluster.cli("trigger", "slow", "--run-id", "r1").returncode == 0

            wait_for(lambda: _long_is(cluster, "running"), 60, "the try to start", cluster)
            os.kill(worker.pid, signal.SIGTERM)  # the worker's main process, as Kubernetes does
            assert worker.proc is not None
            worker.proc.wait(timeout=60)
            wait_for(lambda: _run_state(db_url, "slow") in ("success", "failed"), 60, "the run to end", cluster)
            assert _run_state(db_url, "slow") == "success", cluster.logs()
            assert count_effects(cluster.effects) == {"r1.long": 1}
            state = json.loads(cluster.cli("tasks", "state", "slow", "r1", "--json").stdout)
            assert state["long"]["try_number"] == 1
        finally:
            cluster.stop_all()


def test_a_broker_away_longer_than_worker_lost_after_fails_no_running_try(tmp_path: Path) -> None:
    """The broker is away for longer than ``worker_lost_after`` while a try runs: the worker,
    reconnecting, still beats (its beats go to the database), so the try is not judged lost and
    failed; it ends once and counts. Its beats came from Celery's timer, which stops while the
    consumer reconnects."""
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(
            tmp_path / "c",
            db_url,
            redis.url(),
            extra_env={"DUCTWORK_WORKER_HEARTBEAT": "1", "DUCTWORK_WORKER_LOST_AFTER": "3"},
        )
        cluster.write_flow("slow.py", SLOW)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            cluster.worker("w1", concurrency=1)
            assert cluster.cli("trigger", "slow", "--run-id", "r1").returncode == 0

            wait_for(lambda: _long_is(cluster, "running"), 60, "the try to start", cluster)
            redis.stop()
            time.sleep(7)  # more than twice worker_lost_after
            redis.start()
            wait_for(lambda: _run_state(db_url, "slow") in ("success", "failed"), 90, "the run to end", cluster)
            assert _run_state(db_url, "slow") == "success", cluster.logs()
            assert count_effects(cluster.effects) == {"r1.long": 1}
            state = json.loads(cluster.cli("tasks", "state", "slow", "r1", "--json").stdout)
            assert state["long"]["try_number"] == 1
        finally:
            cluster.stop_all()


def test_a_stopped_schedulers_reply_list_does_not_stay_on_redis_for_ever(tmp_path: Path) -> None:
    """A scheduler stopped while a worker runs one of its tries: its reply list goes with it,
    and the end the worker sends afterwards makes a list that expires (it made one kept for
    ever, one more per scheduler start). The try's end is in the database all the same."""
    import redis as redis_client

    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("slow.py", SLOW.replace('"seconds": 10', '"seconds": 4'))
        client = redis_client.Redis.from_url(redis.url())
        try:
            scheduler = cluster.scheduler()
            cluster.wait_schema()
            cluster.worker("w1", concurrency=1)
            assert cluster.cli("trigger", "slow", "--run-id", "r1").returncode == 0

            wait_for(lambda: _long_is(cluster, "running"), 60, "the try to start", cluster)
            scheduler.stop()
            assert not client.keys("ductwork.reply.*"), "the stopped scheduler's reply list is still there"

            wait_for(lambda: _long_is(cluster, "success"), 60, "the worker to record the try's end", cluster)
            time.sleep(1)  # its reply, sent after the record
            left = client.keys("ductwork.reply.*")
            assert left, "the worker sent no end to the reply list"
            assert all(0 < client.pttl(key) <= 24 * 3600 * 1000 for key in left), [client.pttl(k) for k in left]
        finally:
            client.close()
            cluster.stop_all()


BUSY = """
with Flow("busy", schedule=None) as busy:
    for i in range(3):
        PythonOperator(task_id=f"t{i}", python_callable=work, op_args=[f"t{i}"], op_kwargs={"seconds": 2.5})
"""


def test_tries_waiting_behind_busy_workers_are_not_sent_again(tmp_path: Path) -> None:
    """One slot, three tries of 2.5 s, ``requeue_after`` 1 s: the tries waiting for the busy
    slot are where they should be, and are not sent again (each was, every ``requeue_after``,
    "its worker may have been lost": copies that lengthened the queue)."""
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url(), extra_env={"DUCTWORK_REQUEUE_AFTER": "1"})
        cluster.write_flow("busy.py", BUSY)
        try:
            scheduler = cluster.scheduler("--log-level", "info")
            cluster.wait_schema()
            cluster.worker("w1", concurrency=1)
            shown = cluster.cli("config")
            row = [line for line in shown.stdout.splitlines() if " requeue_after " in line]
            assert row and "1.0" in row[0] and "env" in row[0], shown.stdout
            assert cluster.cli("trigger", "busy", "--run-id", "r1").returncode == 0
            wait_for(lambda: _run_state(db_url, "busy") in ("success", "failed"), 90, "the run to end", cluster)
            assert _run_state(db_url, "busy") == "success", cluster.logs()
            assert count_effects(cluster.effects) == {f"r1.t{i}": 1 for i in range(3)}
            resent = [line for line in scheduler.output().splitlines() if "again (" in line]
            assert not resent, resent
        finally:
            cluster.stop_all()


def test_workers_started_after_an_idle_scheduler_get_its_first_tries_at_once(tmp_path: Path) -> None:
    """The scheduler looked at its workers only while tries were in flight: idle since its
    start, it still held the worker list of its start (none) when the first run came, said
    "no live worker listens on queue 'default'" and held the tries until its next look."""
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("fan.py", FAN)
        try:
            scheduler = cluster.scheduler()
            cluster.wait_schema()
            cluster.worker("w1", concurrency=2)
            wait_for(lambda: "w1" in cluster.cli("workers", "list").stdout, 60, "the worker to register", cluster)
            time.sleep(2)  # the scheduler idles: more than a look's interval (1 s)
            assert cluster.cli("trigger", "fan", "--run-id", "r1").returncode == 0
            wait_for(lambda: _run_state(db_url, "fan") in ("success", "failed"), 60, "the run to end", cluster)
            assert _run_state(db_url, "fan") == "success", cluster.logs()
            assert "no live worker listens" not in scheduler.output(), scheduler.output()
        finally:
            cluster.stop_all()


def test_a_worker_that_cannot_write_the_schedulers_log_folder_runs_its_tries_all_the_same(tmp_path: Path) -> None:
    """Without ``remote_log_url`` a worker writes a try's log under the scheduler's log folder,
    the same path on its host; where that path could not be written there, every try failed at
    its start ("could not open the try's log file"), each retry too. The log now goes to the
    worker's own folder, and says so."""
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        (tmp_path / "a-file").write_text("")
        cluster = Cluster(
            tmp_path / "c",
            db_url,
            redis.url(),
            extra_env={"DUCTWORK_REMOTE_LOG_URL": "", "DUCTWORK_LOG_DIR": str(tmp_path / "a-file" / "logs")},
        )
        cluster.write_flow("fan.py", FAN)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            worker = cluster.worker("w1", concurrency=2)
            assert cluster.cli("trigger", "fan", "--run-id", "r1").returncode == 0
            wait_for(lambda: _run_state(db_url, "fan") in ("success", "failed"), 90, "the run to end", cluster)
            assert _run_state(db_url, "fan") == "success", cluster.logs()
            assert "cannot write" in worker.output() and "the log of fan/r1 a" in worker.output(), worker.output()
        finally:
            cluster.stop_all()


TEMPLATED = """
with Flow("templated", schedule=None) as templated:
    PythonOperator(task_id="long", python_callable=work, op_args=["long"], op_kwargs={"seconds": 8, "run_id": "{{ run_id }}"})
"""


def _rendered_of_running(db_url: str) -> dict | None:
    """The rendered fields of the first try of ``templated``/``r1``'s task while it runs."""
    engine = create_engine(db_url)
    try:
        with read_transaction(engine) as conn:
            record = run_repo.get_run(conn, "templated", "r1")
            if record is None:
                return None
            tries = task_repo.list_tries(conn, record.pk, "long")
        if not tries or tries[0].state.value != "running":
            return None
        return tries[0].rendered
    finally:
        engine.dispose()


def test_a_long_try_on_a_celery_worker_shows_its_rendered_fields_while_it_runs(tmp_path: Path) -> None:
    """A Celery try's rendered template fields were recorded with its end only: the web UI's
    Rendered tab of a running task was empty until the task ended, however long it ran."""
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("templated.py", TEMPLATED)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            cluster.worker("w1", concurrency=1)
            assert cluster.cli("trigger", "templated", "--run-id", "r1").returncode == 0
            rendered = wait_for(
                lambda: _rendered_of_running(db_url), 30, "the rendered fields of the running try", cluster
            )
            assert rendered["op_kwargs"]["run_id"] == "r1", rendered
            wait_for(lambda: _run_state(db_url, "templated") in ("success", "failed"), 60, "the run to end", cluster)
            assert _run_state(db_url, "templated") == "success", cluster.logs()
        finally:
            cluster.stop_all()


TINY = """
with Flow("tiny", schedule=None) as tiny:
    PythonOperator(task_id="only", python_callable=work, op_args=["only"])
"""


def test_a_flows_folder_too_big_for_the_database_fails_its_tries_saying_so(tmp_path: Path) -> None:
    """A 17 MiB data file in the flows folder made a bundle larger than MariaDB's default
    max_allowed_packet (16 MiB): MariaDB dropped the connection, the scheduler took it for an
    outage, and the try stayed queued for ever. It fails now, saying what to do; once the
    folder is small again, the next run goes through."""
    with private_redis() as redis, temporary_database("mariadb", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("tiny.py", TINY)
        big = cluster.flows / "reference.bin"
        big.write_bytes(os.urandom(17 * 1024 * 1024))
        try:
            cluster.scheduler()
            cluster.wait_schema()
            cluster.worker("w1", concurrency=1)
            assert cluster.cli("trigger", "tiny", "--run-id", "big").returncode == 0
            wait_for(lambda: cluster.run_state("tiny", "big") in ("success", "failed"), 90, "the run to end", cluster)
            state = json.loads(cluster.cli("tasks", "state", "tiny", "big", "--json").stdout)
            assert state["only"]["state"] == "failed", state
            assert "max_allowed_packet" in state["only"]["error"] and "bundle_url" in state["only"]["error"], state
            assert "big.only" not in count_effects(cluster.effects)

            big.unlink()
            assert cluster.cli("trigger", "tiny", "--run-id", "small").returncode == 0
            wait_for(lambda: cluster.run_state("tiny", "small") in ("success", "failed"), 90, "the run", cluster)
            assert cluster.run_state("tiny", "small") == "success", cluster.logs()
            assert count_effects(cluster.effects)["small.only"] == 1
        finally:
            cluster.stop_all()
