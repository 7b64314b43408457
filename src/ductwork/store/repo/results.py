"""Task results (XCom) as stored bytes: put, get, list, clear.

This layer stores what it is given; turning values into bytes, and reading them back, is the
serializer's job (``ductwork.store.serializers``), chosen by ``ductwork.store.results``. A row
names the serializer that wrote it, so values written by an older or different serializer stay
readable, and ``reference`` leaves room to keep large values in an object store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.store.records import ResultRecord, StoredResult
from ductwork.store.repo._util import chunks
from ductwork.store.tables import task_results
from ductwork.store.types import utcnow
from ductwork.store.upsert import upsert

tr = task_results


def put_result(
    conn: Connection,
    run_pk: int,
    task_id: str,
    key: str,
    value: bytes | None,
    *,
    serializer: str,
    reference: str | None = None,
    size: int | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Store (or replace) one result. ``size`` defaults to the length of ``value``."""
    row = {
        "run_pk": run_pk,
        "task_id": task_id,
        "key": key,
        "value": value,
        "serializer": serializer,
        "reference": reference,
        "size": size if size is not None else len(value or b""),
        "created_at": now or utcnow(),
    }
    upsert(
        conn,
        tr,
        [row],
        keys=("run_pk", "task_id", "key"),
        update=("value", "serializer", "reference", "size", "created_at"),
    )


def get_result(conn: Connection, run_pk: int, task_id: str, key: str) -> StoredResult | None:
    row = conn.execute(
        sa.select(tr.c.value, tr.c.serializer, tr.c.reference).where(
            tr.c.run_pk == run_pk, tr.c.task_id == task_id, tr.c.key == key
        )
    ).first()
    return StoredResult(row.value, row.serializer, row.reference) if row is not None else None


def list_results(conn: Connection, run_pk: int, task_id: str | None = None) -> list[ResultRecord]:
    """What results a run (or one of its tasks) has, without their values."""
    stmt = sa.select(
        tr.c.run_pk, tr.c.task_id, tr.c.key, tr.c.serializer, tr.c.size, tr.c.reference, tr.c.created_at
    ).where(tr.c.run_pk == run_pk)
    if task_id is not None:
        stmt = stmt.where(tr.c.task_id == task_id)
    stmt = stmt.order_by(tr.c.task_id, tr.c.key)
    return [
        ResultRecord(r.run_pk, r.task_id, r.key, r.serializer, r.size, r.reference, r.created_at)
        for r in conn.execute(stmt)
    ]


def clear_results(conn: Connection, run_pk: int, task_ids: Iterable[str] | None = None) -> int:
    """Delete the results of some tasks of a run (all of its tasks when ``task_ids`` is None).
    Returns how many were deleted."""
    if task_ids is None:
        return conn.execute(sa.delete(tr).where(tr.c.run_pk == run_pk)).rowcount
    deleted = 0
    for part in chunks(list(task_ids)):
        deleted += conn.execute(sa.delete(tr).where(tr.c.run_pk == run_pk, tr.c.task_id.in_(part))).rowcount
    return deleted
