"""Scheduler (and other long-running) jobs: who is alive, by heartbeat.

A job row is written when a scheduler starts, its heartbeat is refreshed every loop, and a job
whose heartbeat is older than a timeout is considered dead by ``alive_jobs``; that is how a
second scheduler, or the UI, tells a crashed scheduler from a busy one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Row

from ductwork.errors import NotFoundError
from ductwork.store.records import SchedulerJobRecord
from ductwork.store.repo._util import inserted_pk
from ductwork.store.tables import scheduler_jobs
from ductwork.store.types import utcnow

RUNNING = "running"

sj = scheduler_jobs


def _record(row: Row[Any]) -> SchedulerJobRecord:
    return SchedulerJobRecord(
        row.id, row.kind, row.hostname, row.pid, row.started_at, row.heartbeat_at, row.end_date, row.state, row.fault
    )


def start_job(
    conn: Connection,
    kind: str,
    *,
    hostname: str,
    pid: int,
    executor: str | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Record a job that has just started; returns its id. ``executor``: a scheduler's, which
    another scheduler reads to know whether it may share the database."""
    now = now or utcnow()
    values = {
        "kind": kind,
        "hostname": hostname,
        "pid": pid,
        "started_at": now,
        "heartbeat_at": now,
        "state": RUNNING,
        "executor": executor,
    }
    return inserted_pk(conn.execute(sa.insert(sj).values(values)))


def heartbeat_job(conn: Connection, job_id: int, *, now: dt.datetime | None = None, fault: str | None = None) -> bool:
    """Refresh a running job's heartbeat, and what keeps it from working (``fault``; None when
    nothing does), which web servers in other processes show; ``False`` when the job is not
    running any more."""
    stmt = (
        sa.update(sj)
        .where(sj.c.id == job_id, sj.c.state == RUNNING)
        .values(heartbeat_at=now or utcnow(), fault=fault[:2000] if fault else None)
    )
    return conn.execute(stmt).rowcount == 1


def end_job(conn: Connection, job_id: int, state: str = "success", *, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    result = conn.execute(sa.update(sj).where(sj.c.id == job_id).values(state=state, end_date=now, heartbeat_at=now))
    if result.rowcount == 0:
        raise NotFoundError(f"no scheduler job {job_id}")


def get_job(conn: Connection, job_id: int) -> SchedulerJobRecord | None:
    row = conn.execute(sa.select(sj).where(sj.c.id == job_id)).first()
    return _record(row) if row is not None else None


def alive_jobs(
    conn: Connection, kind: str, *, timeout: dt.timedelta, now: dt.datetime | None = None
) -> list[SchedulerJobRecord]:
    """Running jobs of ``kind`` whose heartbeat is newer than ``timeout``, newest first."""
    since = (now or utcnow()) - timeout
    stmt = (
        sa.select(sj)
        .where(sj.c.kind == kind, sj.c.state == RUNNING, sj.c.heartbeat_at >= since)
        .order_by(sj.c.heartbeat_at.desc(), sj.c.id.desc())
    )
    return [_record(row) for row in conn.execute(stmt)]
