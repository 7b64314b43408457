"""Which scheduler drives which run, when several share one PostgreSQL or MariaDB database.

A scheduler holds a lease on the runs it drives: ``runs.owner`` names its job row, whose
``heartbeat_at`` it refreshes; the lease lapses ``lease`` seconds after the last heartbeat. A
scheduler claims runs nobody holds (new ones, or those of a scheduler whose lease lapsed) with
``SELECT ... FOR UPDATE SKIP LOCKED``, so two schedulers never claim the same run, and bumps the
run's ``fence`` on every change of hands. Its writes first lock the rows of the runs they touch
(``runs.lock_runs``) and keep only the events of runs it still owns: a takeover (an UPDATE of
the same rows) waits for that transaction, and a scheduler that lost a run learns so before
writing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.core.states import RunState
from ductwork.store.tables import IN_PROCESS_OWNER, runs, scheduler_jobs
from ductwork.store.types import utcnow

_ACTIVE = [RunState.QUEUED.value, RunState.RUNNING.value]


def claim_runs(conn: Connection, job_id: int, *, lease: float, limit: int, now: dt.datetime | None = None) -> list[int]:
    """Claim up to ``limit`` active runs that no live scheduler holds; their primary keys."""
    now = now or utcnow()
    expired = now - dt.timedelta(seconds=lease)
    # Read first, in a statement of its own: a locking read must not lock (or skip) job rows.
    live = list(
        conn.execute(
            sa.select(scheduler_jobs.c.id).where(
                scheduler_jobs.c.state == "running", scheduler_jobs.c.heartbeat_at >= expired
            )
        ).scalars()
    )
    stmt = (
        sa.select(runs.c.id)
        .where(
            runs.c.state.in_(_ACTIVE),
            runs.c.graph_pending == sa.false(),
            sa.or_(runs.c.owner.is_(None), runs.c.owner.not_in([*live, IN_PROCESS_OWNER])),
        )
        .order_by(runs.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    pks = list(conn.execute(stmt).scalars())
    if pks:
        conn.execute(
            sa.update(runs).where(runs.c.id.in_(pks)).values(owner=job_id, fence=runs.c.fence + 1, updated_at=now)
        )
    return pks


def active_run_count(conn: Connection) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(runs)
        .where(runs.c.state.in_(_ACTIVE), runs.c.graph_pending == sa.false())
    )
    return int(conn.execute(stmt).scalar_one())


def owned_runs(conn: Connection, job_id: int) -> set[int]:
    """Active runs this scheduler holds."""
    stmt = sa.select(runs.c.id).where(runs.c.owner == job_id, runs.c.state.in_(_ACTIVE))
    return set(conn.execute(stmt).scalars())


def release_runs(conn: Connection, job_id: int) -> None:
    """Give up every run this scheduler holds (a clean shutdown): others take them at once."""
    conn.execute(sa.update(runs).where(runs.c.owner == job_id).values(owner=None))


def live_schedulers(
    conn: Connection, *, lease: float, executor: str | None = None, now: dt.datetime | None = None
) -> list[tuple[int, str, int]]:
    """(job id, host, pid) of schedulers whose lease has not lapsed (only those that use
    ``executor``, when given)."""
    expired = (now or utcnow()) - dt.timedelta(seconds=lease)
    j = scheduler_jobs
    stmt = sa.select(j.c.id, j.c.hostname, j.c.pid).where(
        j.c.kind == "scheduler", j.c.state == "running", j.c.heartbeat_at >= expired
    )
    if executor is not None:
        stmt = stmt.where(j.c.executor == executor)
    return [(r.id, r.hostname, r.pid) for r in conn.execute(stmt)]


def session_name(hostname: str, pid: int) -> str:
    """The name a scheduler's database sessions carry (PostgreSQL keeps 63 characters of it)."""
    return f"ductwork scheduler {pid}@{hostname}"[:63]


def lapsed_holders(conn: Connection, *, lease: float, now: dt.datetime | None = None) -> list[tuple[str, int]]:
    """(host, pid) of the schedulers whose lease lapsed while they still hold active runs."""
    expired = (now or utcnow()) - dt.timedelta(seconds=lease)
    j = scheduler_jobs
    stmt = (
        sa.select(j.c.hostname, j.c.pid)
        .where(j.c.heartbeat_at < expired, j.c.id.in_(sa.select(runs.c.owner).where(runs.c.state.in_(_ACTIVE))))
        .distinct()
    )
    return [(r.hostname, r.pid) for r in conn.execute(stmt)]


def end_sessions(conn: Connection, names: Iterable[str]) -> int:
    """(PostgreSQL) End the sessions that carry these names; how many were ended. A scheduler
    frozen in the middle of a transaction (a paused VM) keeps its row locks until its session
    ends, and the server's idle-in-transaction limit does not fire in every protocol state (after
    a pipelined batch of statements, for one), so the scheduler that takes over its runs ends its
    sessions itself. Allowed for sessions of the same database role."""
    stmt = sa.text(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name IN :names AND pid <> pg_backend_pid()) AS ended"
    ).bindparams(sa.bindparam("names", expanding=True))
    wanted = list(names)
    return int(conn.execute(stmt, {"names": wanted}).scalar_one()) if wanted else 0
