"""Several schedulers on one database: SQLite refuses a second one; the local executor allows
one per database anywhere; with Celery workers, two or three schedulers on PostgreSQL or
MariaDB share the runs, and when one is killed -9 the others take its runs over."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dbfixtures import temporary_database
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from private_services import private_redis
from tests.remote.support import Cluster, Proc, count_effects, wait_for


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
                assert "this one uses the local executor" in errors[0]
                assert 'executor = "celery" on all of them to run several' in errors[0]
        finally:
            first.terminate()
            first.wait(timeout=30)


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
def test_a_celery_scheduler_refuses_to_start_beside_a_local_executor_one(tmp_path: Path, backend: str) -> None:
    """The local executor's scheduler runs its tries in its own workers, where no other scheduler
    sees them: a Celery scheduler started after it on the same database refuses too (it started,
    and the two ran the same runs' tasks), naming the one that holds the database."""
    with temporary_database(backend, tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, "redis://127.0.0.1:6379/9")
        env = cluster.base_env()
        env.update(DUCTWORK_HOME=str(tmp_path / "home"), DUCTWORK_FLOWS_FOLDER=str(cluster.flows))
        first = _scheduler_cmd({**env, "DUCTWORK_EXECUTOR": "local"}, tmp_path)
        second = None
        try:
            cluster.wait_schema()
            time.sleep(1.0)
            assert first.poll() is None
            second = _scheduler_cmd({**env, "DUCTWORK_EXECUTOR": "celery"}, tmp_path)
            out, _ = second.communicate(timeout=60)
            assert second.returncode == 2, out
            errors = [line for line in out.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1, out
            assert f"another scheduler (pid {first.pid} on" in errors[0]
            assert "uses the local executor" in errors[0]
            assert first.poll() is None  # the first goes on
        finally:
            for started in (first, second):
                if started is not None and started.poll() is None:
                    started.terminate()
                    started.wait(timeout=30)


def test_a_kubernetes_scheduler_refuses_to_start_beside_a_celery_one_and_the_other_way_round(tmp_path: Path) -> None:
    """Schedulers of one database share its runs, each driving the runs it claims: a Kubernetes
    scheduler started beside a Celery one started silently, and the runs it claimed had their
    tries made into pods while the Celery workers sat idle. Either one started second refuses,
    naming the running one and its executor."""
    import socket

    from ductwork.store.engine import transaction
    from ductwork.store.repo import jobs as job_repo

    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        env = cluster.base_env()
        env.update(DUCTWORK_HOME=str(tmp_path / "home"), DUCTWORK_FLOWS_FOLDER=str(cluster.flows))
        first = _scheduler_cmd(env, tmp_path)
        second = None
        try:
            cluster.wait_schema()
            time.sleep(1.0)
            assert first.poll() is None
            kube = {**env, "DUCTWORK_EXECUTOR": "kubernetes", "DUCTWORK_KUBERNETES_IMAGE": "registry/etl:1"}
            second = _scheduler_cmd(kube, tmp_path)
            out, _ = second.communicate(timeout=60)
            assert second.returncode == 2, out
            errors = [line for line in out.splitlines() if line.startswith("Error:")]
            assert len(errors) == 1, out
            assert (
                f'another scheduler (pid {first.pid} on {socket.gethostname()}) is running on this database with executor = "celery"'
                in errors[0]
            )
            assert 'this one uses "kubernetes"' in errors[0]
            assert first.poll() is None  # the first goes on
        finally:
            first.terminate()
            first.wait(timeout=30)
        # The other way round: a Kubernetes scheduler's record (this process stands in for it,
        # as no Kubernetes API runs here), then a Celery scheduler.
        engine = create_engine(db_url)
        try:
            with transaction(engine) as conn:
                job_repo.start_job(
                    conn, "scheduler", hostname=socket.gethostname(), pid=os.getpid(), executor="kubernetes"
                )
        finally:
            engine.dispose()
        third = _scheduler_cmd(env, tmp_path)
        out, _ = third.communicate(timeout=60)
        assert third.returncode == 2, out
        assert (
            f'(pid {os.getpid()} on {socket.gethostname()}) is running on this database with executor = "kubernetes"'
            in out
        )


def _catchup_flow(start: dt.datetime) -> str:
    """30 hourly runs from ``start``, no more (a test crossing an hour would see a 31st)."""
    end = start + dt.timedelta(hours=29)
    return f'''
with Flow("hourly", schedule="@hourly", start_date="{start.isoformat()}", end_date="{end.isoformat()}",
          catchup=True, max_active_runs=40) as hourly:
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
    with _catchup_cluster(tmp_path, backend, lease=6) as (cluster, db_url, start):
        procs = _schedulers_on_a_catchup(cluster, db_url, start, schedulers=schedulers, workers=2)
        # Kill whichever scheduler holds the most active runs (which one takes how many is the
        # database's race; a scheduler holding none would make the kill test nothing).
        time.sleep(8.0)  # the "killed -9 after 10 s" (the runs took about 2 s to appear)
        _, victim = max(((_active_runs_of(db_url, p.pid), p) for p in procs), key=lambda pair: len(pair[0]))
        victim.kill9()
        killed_at = time.monotonic()
        # What it held when it died (read after the kill: a run it finished in between needs
        # no taking over; the others cannot claim before its lease lapses, 6 s here).
        held = _active_runs_of(db_url, victim.pid)
        _wait_for_every_run_to_end(db_url, cluster)
        assert len(_runs(db_url)) == 30
        _assert_every_run_succeeded_and_each_task_ran_once(db_url, cluster)
        assert held, "the killed scheduler held no active run: the kill tested nothing"
        # Its runs were taken over (by the lease's expiry, 6 s here), and all finished.
        survivors = " ".join(" ".join(p.output() for p in procs if p is not victim).split())
        not_taken = {run_id for run_id in held if f"took over run hourly/{run_id}" not in survivors}
        assert not not_taken, (not_taken, held)
        assert time.monotonic() - killed_at < 150


def test_a_scheduler_that_stalls_past_its_lease_gives_way_and_reloads_the_runs_that_come_back(tmp_path: Path) -> None:
    """A scheduler frozen past its lease (SIGSTOP: a paused VM, a swap storm) loses its runs to
    another; that one is killed; the first wakes up and claims them back. What it held in memory
    is stale by then (the other drove them meanwhile): it must load them again, and every task
    still runs exactly once."""
    with _catchup_cluster(tmp_path, "postgres", lease=4) as (cluster, db_url, start):
        procs = _schedulers_on_a_catchup(cluster, db_url, start, workers=1)
        time.sleep(2.0)
        held, first = max(((_active_runs_of(db_url, p.pid), p) for p in procs), key=lambda pair: len(pair[0]))
        other = procs[1] if first is procs[0] else procs[0]
        assert held, "neither scheduler holds a run"
        os.kill(first.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: bool(held & _active_runs_of(db_url, other.pid)), 30, "the take-over", cluster)
            other.kill9()
            time.sleep(5.0)  # the killed one's lease lapses
        finally:
            os.kill(first.pid, signal.SIGCONT)
        _wait_for_every_run_to_end(db_url, cluster)
        _assert_every_run_succeeded_and_each_task_ran_once(db_url, cluster)


@contextmanager
def _catchup_cluster(tmp_path: Path, backend: str, *, lease: int) -> Iterator[tuple[Cluster, str, dt.datetime]]:
    """A private Redis, a new database, a cluster whose schedulers hold runs for ``lease``
    seconds, and the start of a 30-hour catchup; every process stopped at the end."""
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    with private_redis() as redis, temporary_database(backend, tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url(), extra_env={"DUCTWORK_SCHEDULER_LEASE": str(lease)})
        try:
            yield cluster, db_url, now - dt.timedelta(hours=30)
        finally:
            cluster.stop_all()


def _schedulers_on_a_catchup(
    cluster: Cluster, db_url: str, start: dt.datetime, *, workers: int, schedulers: int = 2
) -> list[Proc]:
    """Schedulers s0, s1... and ``workers`` workers of 4 slots, once the 30 catchup runs exist."""
    procs = [cluster.scheduler(name="s0")]
    cluster.wait_schema()
    procs += [cluster.scheduler(name=f"s{i}") for i in range(1, schedulers)]
    for i in range(1, workers + 1):
        cluster.worker(f"w{i}", concurrency=4)
    wait_for(lambda: all("scheduler started" in p.output() for p in procs), 60, "the schedulers", cluster)
    cluster.write_flow("hourly.py", _catchup_flow(start))
    wait_for(lambda: len(_runs(db_url)) >= 30, 60, "the catchup runs", cluster)
    return procs


def _assert_every_run_succeeded_and_each_task_ran_once(db_url: str, cluster: Cluster) -> None:
    runs = _runs(db_url)
    assert all(r.state.value == "success" for r in runs), _tasks_of_runs_in(db_url, ("failed",))
    effects = count_effects(cluster.effects)
    expected = {f"{r.run_id}.{t}": 1 for r in runs for t in ("extract", "transform", "load")}
    assert effects == expected, {k: v for k, v in effects.items() if v != 1} or set(expected) - set(effects)


def _wait_for_every_run_to_end(db_url: str, cluster: Cluster) -> None:
    def ended() -> bool:
        return len(runs := _runs(db_url)) == 30 and all(r.state.value in ("success", "failed") for r in runs)

    try:
        wait_for(ended, 150, "every run to end", cluster)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nunfinished: {_unfinished(db_url)}") from None


def _unfinished(db_url: str) -> dict[str, dict[str, str]]:
    """The task states of the runs not ended, with their owner: what a stuck run waits on."""
    return _tasks_of_runs_in(db_url, ("queued", "running"))


def _tasks_of_runs_in(db_url: str, states: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """For the runs in ``states``: each task's state and the error of its latest try, with the
    run's owner and the reasons its own state changed (why a run failed, or what it waits on)."""
    import sqlalchemy as sa

    from ductwork.store.tables import runs, state_events, task_instances, task_tries

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    runs.c.id,
                    runs.c.run_id,
                    runs.c.owner,
                    task_instances.c.task_id,
                    task_instances.c.state,
                    task_instances.c.try_number,
                )
                .join(task_instances, task_instances.c.run_pk == runs.c.id)
                .where(runs.c.state.in_(states))
            ).all()
            errors = {
                (t.run_pk, t.task_id, t.try_number): t.error
                for t in conn.execute(
                    sa.select(
                        task_tries.c.run_pk, task_tries.c.task_id, task_tries.c.try_number, task_tries.c.error
                    ).where(task_tries.c.run_pk.in_({r.id for r in rows}))
                )
            }
            reasons: dict[int, list[str]] = {}
            for e in conn.execute(
                sa.select(state_events.c.run_pk, state_events.c.new, state_events.c.reason)
                .where(state_events.c.run_pk.in_({r.id for r in rows}), state_events.c.task_id.is_(None))
                .order_by(state_events.c.id)
            ):
                reasons.setdefault(e.run_pk, []).append(f"{e.new}: {e.reason}")
            out: dict[str, dict[str, str]] = {}
            for r in rows:
                run = out.setdefault(f"{r.run_id} (owner {r.owner}; {reasons.get(r.id, [])})", {})
                error = errors.get((r.id, r.task_id, r.try_number))
                run[r.task_id] = f"{r.state} at try {r.try_number}" + (f": {error}" if error else "")
            return out
    finally:
        engine.dispose()


def test_a_scheduler_frozen_in_a_transaction_does_not_keep_its_runs_from_the_others(tmp_path: Path) -> None:
    """A scheduler frozen (SIGSTOP) while its transaction holds row locks on runs: the database
    ends its session once it has sat idle for the lease, so the locks go and another scheduler
    takes its runs over as it would a killed one's; every task still runs once, and the frozen
    one carries on when it wakes (its session's end is a database fault it rides out)."""
    with _catchup_cluster(tmp_path, "postgres", lease=4) as (cluster, db_url, start):
        procs = _schedulers_on_a_catchup(cluster, db_url, start, workers=2)
        wait_for(lambda: all(_active_runs_of(db_url, p.pid) for p in procs), 30, "both to hold runs", cluster)
        frozen = _freeze_holding_run_locks(db_url, procs)
        other = procs[1] if frozen is procs[0] else procs[0]
        try:
            held = _active_runs_of(db_url, frozen.pid)
            wait_for(
                lambda: not held - _active_runs_of(db_url, other.pid) - _ended(db_url),
                40,
                "the other scheduler to take the frozen one's runs",
                cluster,
            )
        finally:
            os.kill(frozen.pid, signal.SIGCONT)
        _wait_for_every_run_to_end(db_url, cluster)
        _assert_every_run_succeeded_and_each_task_ran_once(db_url, cluster)
        assert frozen.alive(), frozen.output()[-3000:]


def _freeze_holding_run_locks(db_url: str, procs: list[Proc]) -> Proc:
    """SIGSTOP one of the schedulers at a moment its session holds locks on rows of ``runs``
    (found by the session's name in ``pg_stat_activity``); the frozen one. The locks are held
    for a few milliseconds of each step, so ``pg_locks`` is watched until a scheduler holds
    some, and that one is stopped at once (stopping one at random moments missed them all on
    a busy machine); if its transaction ended meanwhile, it goes on and the watch goes on."""
    import sqlalchemy as sa

    holders = sa.text(
        "SELECT DISTINCT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE a.application_name LIKE 'ductwork scheduler %' AND l.relation = 'runs'::regclass AND l.granted "
        "AND l.mode IN ('RowShareLock', 'RowExclusiveLock')"
    )
    by_name = {f"ductwork scheduler {p.pid}@": p for p in procs}
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"), poolclass=sa.NullPool)
    deadline = time.monotonic() + 120
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:

            def holding() -> set[int]:
                names = list(conn.execute(holders).scalars())
                return {p.pid for prefix, p in by_name.items() for name in names if name.startswith(prefix)}

            next_look = time.monotonic() + 2
            while time.monotonic() < deadline:
                for pid in holding():
                    os.kill(pid, signal.SIGSTOP)
                    time.sleep(0.02)  # a statement under way ends; the session then waits on its frozen client
                    if pid in holding():
                        return next(p for p in procs if p.pid == pid)
                    os.kill(pid, signal.SIGCONT)
                if time.monotonic() > next_look:
                    next_look = time.monotonic() + 2
                    if len(_ended(db_url)) == 30:
                        raise AssertionError("the runs ended before a scheduler was caught holding locks on them")
                time.sleep(0.002)
    finally:
        engine.dispose()
    raise AssertionError("never caught a scheduler in a transaction holding locks on runs")


def _ended(db_url: str) -> set[str]:
    return {r.run_id for r in _runs(db_url) if r.state.value in ("success", "failed")}


QUICK = """
with Flow("quick", schedule=None) as quick:
    PythonOperator(task_id="only", python_callable=work, op_args=["only"])
"""


def test_a_scheduler_that_cannot_reach_its_broker_takes_no_runs_from_the_others(tmp_path: Path) -> None:
    """Its tries could not reach a worker: runs it claimed would wait for its lease to lapse."""
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("quick.py", QUICK)
        try:
            cluster.scheduler(name="good")
            cluster.wait_schema()
            cluster.worker("w1", concurrency=2)
            cluster.extra_env["DUCTWORK_BROKER_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
            cut_off = cluster.scheduler(name="cut-off")
            del cluster.extra_env["DUCTWORK_BROKER_URL"]
            wait_for(lambda: "is unreachable" in cut_off.output(), 60, "the cut-off scheduler to miss its broker")
            for i in range(6):
                assert cluster.cli("trigger", "quick", "--run-id", f"q{i}").returncode == 0
            wait_for(
                lambda: all(cluster.run_state("quick", f"q{i}") == "success" for i in range(6)),
                30,
                "every run to succeed",
                cluster,
            )
            assert "took over run" not in cut_off.output()
            assert count_effects(cluster.effects) == {f"q{i}.only": 1 for i in range(6)}
        finally:
            cluster.stop_all()


LIMITED = """
with Flow("narrow", schedule=None) as narrow:  # a pool of 2 (set by the test)
    for i in range(2):
        PythonOperator(task_id=f"t{i}", python_callable=work, op_args=[f"t{i}"], op_kwargs={"seconds": 6}, pool="narrow")

with Flow("capped", schedule=None, max_active_tasks=2) as capped:
    for i in range(2):
        PythonOperator(task_id=f"t{i}", python_callable=work, op_args=[f"t{i}"], op_kwargs={"seconds": 6})
"""


def _state_of(db_url: str, flow_id: str, run_id: str) -> str | None:
    engine = create_engine(db_url)
    try:
        with read_transaction(engine) as conn:
            record = run_repo.get_run(conn, flow_id, run_id)
            return record.state.value if record is not None else None
    finally:
        engine.dispose()


def _tries_of(db_url: str, run_id: str) -> list[tuple[dt.datetime, dt.datetime]]:
    import sqlalchemy as sa

    from ductwork.store.tables import runs, task_tries

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(task_tries.c.start_date, task_tries.c.end_date)
                .select_from(task_tries.join(runs, runs.c.id == task_tries.c.run_pk))
                .where(runs.c.run_id == run_id)
            )
            return [(r.start_date, r.end_date) for r in rows]
    finally:
        engine.dispose()


@pytest.mark.parametrize("flow_id", ["narrow", "capped"])
def test_a_pool_and_max_active_tasks_hold_across_schedulers(tmp_path: Path, flow_id: str) -> None:
    """Each scheduler counted a pool's slots (and a flow's ``max_active_tasks``) by its own
    tries only: a second scheduler started the tries of the run it took while the first one's
    filled the pool, and four ran in a pool of two."""
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("limited.py", LIMITED)
        try:
            first = cluster.scheduler(name="first")
            cluster.wait_schema()
            cluster.worker("w1", concurrency=4)
            assert cluster.cli("pools", "set", "narrow", "2").returncode == 0
            assert cluster.cli("trigger", flow_id, "--run-id", "r1").returncode == 0
            wait_for(lambda: len(_tries_of(db_url, "r1")) == 2, 60, "r1's two tries to start", cluster)
            second = cluster.scheduler(name="second")
            wait_for(lambda: "scheduler started" in second.output(), 60, "the second scheduler", cluster)
            time.sleep(1)  # it has looked at the pools
            assert cluster.cli("trigger", flow_id, "--run-id", "r2").returncode == 0
            wait_for(lambda: _state_of(db_url, flow_id, "r2") in ("success", "failed"), 90, "r2 to end", cluster)
            held = _active_runs_of(db_url, second.pid) | _active_runs_of(db_url, first.pid)
        finally:
            cluster.stop_all()
        first_ends = [end for _, end in _tries_of(db_url, "r1")]
        second_starts = [start for start, _ in _tries_of(db_url, "r2")]
        assert len(first_ends) == 2 and len(second_starts) == 2 and not held
        assert min(second_starts) >= min(first_ends), (first_ends, second_starts)  # never 3 or 4 at once
        assert count_effects(cluster.effects) == {"r1.t0": 1, "r1.t1": 1, "r2.t0": 1, "r2.t1": 1}


GATED = """
def wait_for_gate():
    while not os.path.exists(os.path.join(os.path.dirname(EFFECTS), "gate")):
        time.sleep(0.05)

with Flow("gated", schedule=None) as gated:
    up = PythonOperator(task_id="up", python_callable=wait_for_gate)
    down = PythonOperator(task_id="down", python_callable=work, op_args=["down"], op_kwargs={"seconds": 3}, pool="narrow")
    up >> down
"""


def _task_tries(db_url: str, task_id: str) -> list[tuple[dt.datetime | None, dt.datetime | None]]:
    import sqlalchemy as sa

    from ductwork.store.tables import task_tries

    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(task_tries.c.start_date, task_tries.c.end_date).where(task_tries.c.task_id == task_id)
            )
            return [(r.start_date, r.end_date) for r in rows]
    finally:
        engine.dispose()


def test_two_schedulers_whose_tasks_become_ready_at_once_take_turns_at_a_pool(tmp_path: Path) -> None:
    """Each scheduler counted the others' tries in a pool once a poll: two whose tasks became
    ready in the same poll both saw the one free slot of a pool, and both started a try in it.
    Now each counts under a lock of the pool's row, from counting to recording what it queued."""
    with private_redis() as redis, temporary_database("postgres", tmp_path) as db_url:
        cluster = Cluster(tmp_path / "c", db_url, redis.url())
        cluster.write_flow("gated.py", GATED)
        try:
            first = cluster.scheduler("--poll-interval", "3", name="first")
            cluster.wait_schema()
            cluster.worker("w1", concurrency=4)
            assert cluster.cli("pools", "set", "narrow", "1").returncode == 0
            assert cluster.cli("trigger", "gated", "--run-id", "r1").returncode == 0
            wait_for(
                lambda: _active_runs_of(db_url, first.pid) == {"r1"}, 60, "the first scheduler to take r1", cluster
            )
            second = cluster.scheduler("--poll-interval", "3", name="second")
            wait_for(lambda: "scheduler started" in second.output(), 60, "the second scheduler", cluster)
            os.kill(first.pid, signal.SIGSTOP)  # r2 goes to the second one
            try:
                assert cluster.cli("trigger", "gated", "--run-id", "r2").returncode == 0
                wait_for(lambda: _active_runs_of(db_url, second.pid) == {"r2"}, 60, "the second to take r2", cluster)
            finally:
                os.kill(first.pid, signal.SIGCONT)
            wait_for(lambda: len(_task_tries(db_url, "up")) == 2, 60, "both runs' first task to start", cluster)
            time.sleep(3.5)  # both schedulers have counted the pool: nothing in it
            (cluster.root / "gate").touch()  # both runs' pooled task become ready at once
            wait_for(
                lambda: {cluster.run_state("gated", r) for r in ("r1", "r2")} <= {"success", "failed"},
                90,
                "both runs to end",
                cluster,
            )
        finally:
            cluster.stop_all()
        downs = sorted(_task_tries(db_url, "down"), key=lambda t: str(t[0]))
        assert len(downs) == 2 and all(start and end for start, end in downs), downs
        assert downs[1][0] >= downs[0][1], downs  # one after the other: never two in a pool of one
        assert count_effects(cluster.effects) == {"r1.down": 1, "r2.down": 1}


@pytest.mark.parametrize("gone", ["zombie", "this pid"])
def test_a_scheduler_of_another_executor_killed_on_this_host_does_not_refuse_the_next_one(
    tmp_path: Path, gone: str
) -> None:
    """A Celery scheduler killed -9 on this host left a fresh record. A Kubernetes one started
    next was refused ("another scheduler (pid N on HOST) is running ... executor = "celery"")
    for up to scheduler_lease when the killed one was a zombie (its parent had not reaped it:
    kill(pid, 0) succeeds on it) or had this very pid (a container's pid 1 restarted under the
    same host name)."""
    import socket

    from ductwork.cli.scheduler_cmd import refuse_beside_another_executor
    from ductwork.engine.coordination import SchedulerConflictError
    from ductwork.settings import Settings
    from ductwork.store.engine import transaction
    from ductwork.store.fresh_schema import ensure_schema
    from ductwork.store.repo import jobs as job_repo

    with temporary_database("postgres", tmp_path) as db_url:
        engine = create_engine(db_url)
        ensure_schema(engine)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])  # not waited for: a zombie once it exits
        try:
            deadline = time.monotonic() + 30
            while b") Z" not in Path(f"/proc/{dead.pid}/stat").read_bytes() and time.monotonic() < deadline:
                time.sleep(0.05)
            pid = dead.pid if gone == "zombie" else os.getpid()
            with transaction(engine) as conn:
                job_repo.start_job(conn, "scheduler", hostname=socket.gethostname(), pid=pid, executor="celery")
            engine.dispose()
            kube = Settings.load(
                environ={
                    "DUCTWORK_DATABASE_URL": db_url,
                    "DUCTWORK_EXECUTOR": "kubernetes",
                    "DUCTWORK_HOME": str(tmp_path),
                }
            )
            refuse_beside_another_executor(kube)  # no SchedulerConflictError
            with transaction(engine) as conn:  # the same record, from another host: it may be alive
                job_repo.start_job(conn, "scheduler", hostname="sched-2", pid=pid, executor="celery")
            engine.dispose()
            with pytest.raises(SchedulerConflictError, match=r"another scheduler \(pid \d+ on sched-2\)"):
                refuse_beside_another_executor(kube)
        finally:
            dead.wait()
