"""Run leases shared by several schedulers on one server database (ADR 0009)."""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from store_helpers import create_run, graph

from dbfixtures import temporary_database
from ductwork.engine.coordination import Coordination
from ductwork.store import migrate
from ductwork.store.engine import create_engine, transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import leases
from ductwork.store.tables import runs, scheduler_jobs
from ductwork.store.types import utcnow

LEASE = 30.0


@pytest.fixture(params=["postgres", "mariadb"])
def server_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with temporary_database(request.param, tmp_path) as url:
        engine = create_engine(url)
        try:
            migrate.upgrade(engine)
            yield engine
        finally:
            engine.dispose()


def _two_schedulers_and_a_run(engine: Engine) -> tuple[Coordination, Coordination, RunRecord]:
    one, other = (Coordination(engine, remote_executor=True, lease=LEASE) for _ in range(2))
    one.begin()
    other.begin()
    with transaction(engine) as conn:
        return one, other, create_run(conn, graph(edges={"a": []}))


def _stall(engine: Engine, coordination: Coordination) -> None:
    """The scheduler's last heartbeat is older than its lease (it stalled, or was killed)."""
    with transaction(engine) as conn:
        conn.execute(
            sa.update(scheduler_jobs)
            .where(scheduler_jobs.c.id == coordination.job_id)
            .values(heartbeat_at=utcnow() - dt.timedelta(seconds=2 * LEASE))
        )


def _heartbeat(engine: Engine, coordination: Coordination) -> None:
    with transaction(engine) as conn:
        conn.execute(
            sa.update(scheduler_jobs).where(scheduler_jobs.c.id == coordination.job_id).values(heartbeat_at=utcnow())
        )


def test_a_run_that_comes_back_to_a_scheduler_is_reported_as_claimed_again(server_engine: Engine) -> None:
    """A scheduler that stalls past its lease loses its runs to another; when that one dies in
    turn and the first claims them again, it must know they are newly claimed: what it held in
    memory of them is stale (the other drove them meanwhile)."""
    first, second, run = _two_schedulers_and_a_run(server_engine)
    _stall(server_engine, second)  # only the first is live: it claims the run
    assert first.owned() == {run.pk} and first.claimed == {run.pk}
    assert first.owned() == {run.pk} and first.claimed == set()  # held, not claimed again

    _stall(server_engine, first)
    _heartbeat(server_engine, second)
    assert second.owned() == {run.pk} and second.claimed == {run.pk}
    assert first.owned() == set()  # the other holds it and is live

    _stall(server_engine, second)
    _heartbeat(server_engine, first)
    assert first.owned() == {run.pk} and first.claimed == {run.pk}


def test_the_sessions_of_a_lapsed_scheduler_that_holds_runs_can_be_ended(server_engine: Engine) -> None:
    """A scheduler frozen mid-transaction keeps its row locks; the one taking over its runs finds
    it (its lease lapsed, it holds active runs) and, on PostgreSQL, ends its sessions."""
    frozen, alive, run = _two_schedulers_and_a_run(server_engine)
    with transaction(server_engine) as conn:
        conn.execute(sa.update(scheduler_jobs).where(scheduler_jobs.c.id == frozen.job_id).values(pid=4242))
    _stall(server_engine, alive)
    assert frozen.owned() == {run.pk}
    _heartbeat(server_engine, alive)
    with transaction(server_engine) as conn:
        assert leases.lapsed_holders(conn, lease=LEASE) == []  # both live
    _stall(server_engine, frozen)
    with transaction(server_engine) as conn:
        assert leases.lapsed_holders(conn, lease=LEASE) == [(socket.gethostname(), 4242)]
    if server_engine.url.get_backend_name() != "postgresql":
        return
    name = leases.session_name(socket.gethostname(), 4242)
    its_engine = create_engine(server_engine.url, name=name)
    try:
        with pytest.raises(sa.exc.DBAPIError), transaction(its_engine) as held:
            held.execute(sa.select(runs.c.id).where(runs.c.id == run.pk).with_for_update())
            with transaction(server_engine) as conn:
                assert leases.end_sessions(conn, [name, "nobody's session"]) == 1
            time.sleep(0.5)
            held.execute(sa.text("SELECT 1"))  # its session is gone
        with transaction(server_engine) as conn:  # and so is its lock
            assert leases.claim_runs(conn, alive.job_id, lease=LEASE, limit=5) == [run.pk]
    finally:
        its_engine.dispose()


def test_a_pool_another_scheduler_is_queueing_into_is_busy_for_the_others(server_engine: Engine) -> None:
    """Two schedulers deciding at once each counted the tries the other had queued before
    either recorded its own: both filled the same free slot. While one holds a pool's (a
    flow's) row, from its count to the recording of what it queued, the others find it busy
    without waiting (a frozen scheduler must not hold them up): its tasks wait a turn."""
    from ductwork.store.repo import flows as flow_repo
    from ductwork.store.repo import pools

    with transaction(server_engine) as conn:
        pools.put_pool(conn, "narrow", 1)
        pools.put_pool(conn, "wide", 8)
        flow_repo.upsert_flow(conn, graph("capped"))
    with transaction(server_engine) as first:
        assert pools.lock_limits(first, ["narrow", "unlimited"], ["capped", "ad-hoc"]) == (set(), set())
        with transaction(server_engine) as second:  # names with no row are never busy
            busy = pools.lock_limits(second, ["narrow", "wide", "unlimited"], ["capped", "ad-hoc"])
            assert busy == ({"narrow"}, {"capped"})
    with transaction(server_engine) as second:
        assert pools.lock_limits(second, ["narrow", "wide"], ["capped"]) == (set(), set())


def test_a_local_scheduler_restarted_with_the_pid_its_killed_row_names_starts(server_engine: Engine) -> None:
    """In a container, a scheduler killed -9 and started again is pid 1 again on the same host
    name: the killed one's row (heartbeat within the lease) named this very process, and the
    new one refused to start "beside" itself until the lease lapsed. A live other process on
    this host still makes it refuse."""
    import subprocess

    from ductwork.engine.coordination import SchedulerConflictError

    killed = Coordination(server_engine, remote_executor=False, lease=LEASE)
    killed.begin()  # its row: this host, this pid, a fresh heartbeat
    restarted = Coordination(server_engine, remote_executor=False, lease=LEASE)
    restarted.begin()  # not refused
    other = subprocess.Popen(["sleep", "60"])
    try:
        with transaction(server_engine) as conn:
            conn.execute(sa.update(scheduler_jobs).where(scheduler_jobs.c.id == killed.job_id).values(pid=other.pid))
        with pytest.raises(SchedulerConflictError, match=rf"another scheduler \(pid {other.pid} on "):
            Coordination(server_engine, remote_executor=False, lease=LEASE).begin()
    finally:
        other.kill()
        other.wait()
