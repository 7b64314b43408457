"""Chaos with remote workers, bounded in time: kill -9 of workers mid-try, restarts of the
broker, restarts of PostgreSQL, kill -9 of one of two schedulers, at random moments, at least
20 times per case. After each case every task instance has reached its final state (every run
succeeded), no try that finished ran again, nothing was lost; counted from side effects.

Each execution of a task leaves a file named by run, task and try number. So, per task: exactly
one file of its successful try, at most one file per try number (a redelivered message for a
started or finished try never ran it again), and none after the successful try.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from dbfixtures import temporary_database
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from private_services import private_postgres, private_redis
from tests.remote.support import Cluster, Proc, wait_for

KILLS = 20

CHAOS_FLOW = """
import os, time, uuid
from ductwork import Flow, PythonOperator

EFFECTS = os.environ["DUCTWORK_TEST_EFFECTS"]

def step(task_id, ti=None, run_id=None):
    time.sleep(0.2 + 0.3 * (hash(task_id) % 3) / 2)
    name = f"{run_id}~{task_id}~{ti.try_number}~{uuid.uuid4().hex}"
    fd = os.open(os.path.join(EFFECTS, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    os.close(fd)

with Flow("chaos", schedule=None, max_active_runs=50) as chaos:
    for chain in range(4):
        previous = None
        for n in range(8):
            task_id = f"c{chain}_{n}"
            op = PythonOperator(task_id=task_id, python_callable=step, op_args=[task_id], retries=8, retry_delay=0.2)
            if previous is not None:
                previous >> op
            previous = op
"""


def _runs(db_url: str) -> list:
    engine = create_engine(db_url)
    try:
        with read_transaction(engine) as conn:
            return run_repo.list_runs(conn, flow_id="chaos", limit=200).items
    except Exception:
        return []
    finally:
        engine.dispose()


def _check_effects(cluster: Cluster, db_url: str) -> None:
    from ductwork.store.repo import tasks as task_repo

    effects: Counter[tuple[str, str, int]] = Counter()
    for path in cluster.effects.iterdir():
        run_id, task_id, number, _ = path.name.split("~")
        effects[(run_id, task_id, int(number))] += 1
    engine = create_engine(db_url)
    try:
        with read_transaction(engine) as conn:
            for run in run_repo.list_runs(conn, flow_id="chaos", limit=200).items:
                assert run.state.value == "success", (run.run_id, run.state)
                for ti in task_repo.list_task_instances(conn, run.pk):
                    assert ti.state.value == "success", (run.run_id, ti.task_id, ti.state)
                    mine = {n: c for (r, t, n), c in effects.items() if r == run.run_id and t == ti.task_id}
                    assert mine.get(ti.try_number) == 1, (run.run_id, ti.task_id, ti.try_number, mine)
                    assert all(c == 1 for c in mine.values()), (run.run_id, ti.task_id, mine)
                    assert max(mine) == ti.try_number, (run.run_id, ti.task_id, ti.try_number, mine)
    finally:
        engine.dispose()


def _trigger(cluster: Cluster, n: int) -> None:
    done = cluster.cli("trigger", "chaos", "--run-id", f"r{n}")
    assert done.returncode == 0, done.stderr


def _chaos(
    cluster: Cluster, db_url: str, strike, *, kills: int = KILLS, gap: tuple[float, float] = (0.4, 1.2), tend=None
) -> None:
    """Strike ``kills`` times at random moments while runs are active (a new run whenever none
    is), then wait for every run to end and check what happened."""
    rng = random.Random()
    runs = 0
    _trigger(cluster, runs)
    runs += 1
    wait_for(lambda: _runs(db_url) and _runs(db_url)[0].state.value == "running", 60, "the first run", cluster)
    for _ in range(kills):
        time.sleep(rng.uniform(*gap))
        if all(r.state.value in ("success", "failed") for r in _runs(db_url)):
            _trigger(cluster, runs)
            runs += 1
            time.sleep(0.5)
        strike(rng)

    def ended() -> bool:
        if tend is not None:
            tend()
        found = _runs(db_url)
        return bool(found) and all(r.state.value in ("success", "failed") for r in found)

    wait_for(
        ended,
        180,
        "every run to end",
        cluster,
    )
    _check_effects(cluster, db_url)


def test_chaos_kill_workers_mid_try(tmp_path: Path) -> None:
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url(), extra_env={"DUCTWORK_WORKER_LOST_AFTER": "2"})
        cluster.flows.joinpath("chaos.py").write_text(CHAOS_FLOW)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            workers: list[Proc] = [cluster.worker(f"w{i}", concurrency=2) for i in range(3)]
            count = [len(workers)]

            def strike(rng: random.Random) -> None:
                victim = rng.choice([w for w in workers if w.alive()])
                victim.kill9()
                workers.remove(victim)
                workers.append(cluster.worker(f"w{count[0]}", concurrency=2))
                count[0] += 1

            _chaos(cluster, db_url, strike)
            killed = {f"w{i}" for i in range(count[0])} - {w.name for w in workers}

            def states() -> dict[str, str] | None:
                listed = json.loads(cluster.cli("workers", "list", "--json").stdout)["workers"]
                found = {w["name"].split("@")[0]: w["state"] for w in listed}
                # (a worker killed before it had registered is not listed at all)
                lost = [n for n in killed if n in found]
                return found if lost and all(found[n] == "lost" for n in lost) else None

            # Every killed worker is shown lost once it has been silent for worker_lost_after.
            shown = wait_for(
                states,
                30,
                "the killed workers to show as lost",
                cluster,
            )
            assert killed and all(shown.get(w.name) == "running" for w in workers), shown
        finally:
            cluster.stop_all()


def test_chaos_restart_the_broker(tmp_path: Path) -> None:
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.flows.joinpath("chaos.py").write_text(CHAOS_FLOW)
        try:
            cluster.scheduler()
            cluster.wait_schema()
            cluster.worker("w1", concurrency=3)
            cluster.worker("w2", concurrency=3)

            def strike(rng: random.Random) -> None:
                redis.kill() if rng.random() < 0.5 else redis.stop()
                time.sleep(rng.uniform(0.1, 0.8))
                redis.start()

            _chaos(cluster, db_url, strike)
        finally:
            cluster.stop_all()


class _Kept:
    """A scheduler restarted whenever it exits (as systemd's Restart=always would)."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster, self.name = cluster, name
        self.proc = cluster.scheduler(name=name)
        self.restarts = 0

    def keep(self) -> None:
        if not self.proc.alive():
            self.restarts += 1
            self.proc = self.cluster.scheduler(name=self.name)


@pytest.mark.parametrize("case", ["postgres_restart", "scheduler_kill"])
def test_chaos_database_and_scheduler(tmp_path: Path, case: str) -> None:
    with private_redis() as redis, private_postgres() as pg:
        db_url = pg.create_database("ductwork_chaos")
        cluster = Cluster(
            tmp_path / "c",
            db_url,
            redis.url(),
            extra_env={"DUCTWORK_SCHEDULER_LEASE": "3", "DUCTWORK_WORKER_LOST_AFTER": "6"},
        )
        cluster.flows.joinpath("chaos.py").write_text(CHAOS_FLOW)
        try:
            schedulers = [_Kept(cluster, "s0")]
            cluster.wait_schema()
            if case == "scheduler_kill":
                schedulers.append(_Kept(cluster, "s1"))
            cluster.worker("w1", concurrency=3)
            cluster.worker("w2", concurrency=3)

            def strike(rng: random.Random) -> None:
                if case == "postgres_restart":
                    pg.kill() if rng.random() < 0.5 else pg.stop()
                    time.sleep(rng.uniform(0.1, 0.5))
                    pg.start()
                else:
                    rng.choice(schedulers).proc.kill9()
                for kept in schedulers:
                    kept.keep()

            def tend() -> None:
                for kept in schedulers:
                    kept.keep()

            _chaos(cluster, db_url, strike, gap=(0.5, 1.5), tend=tend)
        finally:
            cluster.stop_all()
