"""Several schedulers on one database: SQLite refuses a second one; the local executor allows
one per database anywhere; with Celery workers, two or three schedulers on PostgreSQL or
MariaDB share the runs, and when one is killed -9 the others take its runs over."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dbfixtures import temporary_database
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from private_services import private_redis
from tests.remote.support import Cluster, count_effects, wait_for


def _scheduler_cmd(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ductwork.cli", "scheduler", "--poll-interval", "0.2"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_second_scheduler_with_the_local_executor_refuses_to_start(tmp_path: Path, backend: str) -> None:
    with temporary_database(backend, tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, "")
        env = cluster.base_env()
        env.update(
            DUCTWORK_EXECUTOR="local", DUCTWORK_HOME=str(tmp_path / "home"), DUCTWORK_FLOWS_FOLDER=str(cluster.flows)
        )
        first = _scheduler_cmd(env, tmp_path)
        try:
            cluster.wait_schema()
            time.sleep(1.0)
            assert first.poll() is None
            second = _scheduler_cmd(env, tmp_path)
            out, _ = second.communicate(timeout=60)
            assert second.returncode == 2, out
            errors = [line for line in out.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1, out
            if backend == "sqlite":
                assert f"another scheduler (pid {first.pid} on" in errors[0]
                assert "SQLite allows one scheduler: use PostgreSQL or MariaDB" in errors[0]
            else:
                assert f"another scheduler (pid {first.pid} on" in errors[0]
                assert 'executor = "celery" to run several' in errors[0]
        finally:
            first.terminate()
            first.wait(timeout=30)


def _catchup_flow(start: dt.datetime) -> str:
    return f'''
with Flow("hourly", schedule="@hourly", start_date="{start.isoformat()}", catchup=True, max_active_runs=40) as hourly:
    a = PythonOperator(task_id="extract", python_callable=work, op_args=["extract"], op_kwargs={{"seconds": 1.0}})
    b = PythonOperator(task_id="transform", python_callable=work, op_args=["transform"], op_kwargs={{"seconds": 1.0}})
    c = PythonOperator(task_id="load", python_callable=work, op_args=["load"], op_kwargs={{"seconds": 1.0}})
    a >> b >> c
'''


def _runs(db_url: str) -> list:
    engine = create_engine(db_url)
    try:
        with read_transaction(engine) as conn:
            return run_repo.list_runs(conn, flow_id="hourly", limit=100).items
    finally:
        engine.dispose()


def _active_runs_of(db_url: str, pid: int) -> set[str]:
    """Active runs held by the scheduler with this pid."""
    import sqlalchemy as sa

    from ductwork.store.tables import runs, scheduler_jobs

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            job = conn.execute(sa.select(scheduler_jobs.c.id).where(scheduler_jobs.c.pid == pid)).scalar()
            rows = conn.execute(
                sa.select(runs.c.run_id).where(runs.c.owner == job, runs.c.state.in_(["queued", "running"]))
            )
            return {r.run_id for r in rows}
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
@pytest.mark.parametrize("schedulers", [2, 3])
def test_schedulers_share_a_catchup_and_take_over_a_killed_one(tmp_path: Path, backend: str, schedulers: int) -> None:
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start = now - dt.timedelta(hours=30)
    with private_redis() as redis, temporary_database(backend, tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url(), extra_env={"DUCTWORK_SCHEDULER_LEASE": "6"})
        try:
            procs = [cluster.scheduler(name="s0")]
            cluster.wait_schema()
            procs += [cluster.scheduler(name=f"s{i}") for i in range(1, schedulers)]
            cluster.worker("w1", concurrency=4)
            cluster.worker("w2", concurrency=4)
            wait_for(lambda: all("scheduler started" in p.output() for p in procs), 60, "the schedulers", cluster)
            cluster.write_flow("hourly.py", _catchup_flow(start))
            wait_for(lambda: len(_runs(db_url)) >= 30, 60, "the catchup runs", cluster)
            # Kill whichever scheduler holds the most active runs (which one takes how many is the
            # database's race; a scheduler holding none would make the kill test nothing).
            time.sleep(8.0)  # the "killed -9 after 10 s" (the runs took about 2 s to appear)
            held, victim = max(((_active_runs_of(db_url, p.pid), p) for p in procs), key=lambda pair: len(pair[0]))
            victim.kill9()
            killed_at = time.monotonic()
            wait_for(
                lambda: all(r.state.value in ("success", "failed") for r in _runs(db_url)) and len(_runs(db_url)) == 30,
                150,
                "every run to end",
                cluster,
            )
            runs = _runs(db_url)
            assert len(runs) == 30
            assert all(r.state.value == "success" for r in runs), [(r.run_id, r.state) for r in runs]
            effects = count_effects(cluster.effects)
            expected = {f"{r.run_id}.{t}": 1 for r in runs for t in ("extract", "transform", "load")}
            assert effects == expected, {k: v for k, v in effects.items() if v != 1} or set(expected) - set(effects)
            assert held, "the killed scheduler held no active run: the kill tested nothing"
            # Its runs were taken over (by the lease's expiry, 6 s here), and all finished.
            survivors = " ".join(" ".join(p.output() for p in procs if p is not victim).split())
            assert all(f"took over run hourly/{run_id}" in survivors for run_id in held), held
            assert time.monotonic() - killed_at < 150
        finally:
            cluster.stop_all()
