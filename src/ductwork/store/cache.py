"""``SqlCacheStore``: fingerprints of tries of cached tasks, in the ``task_fingerprints`` table.

Used from workers (like ``SqlResults``): each call is one short transaction of its own. A try
is recorded once, when it ends, with what was decided (ran or reused) and why.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from ductwork.core.graph import NodeSpec
from ductwork.core.versioning import CacheEntry, Fingerprint
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo.runs import split_run_key
from ductwork.store.tables import runs, task_fingerprints
from ductwork.store.types import utcnow
from ductwork.store.upsert import upsert

tf = task_fingerprints


class SqlCacheStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def find(self, flow_id: str, task_id: str, *, cache_key: str | None = None) -> CacheEntry | None:
        with read_transaction(self.engine) as conn:
            return latest_entry(conn, flow_id, task_id, cache_key=cache_key, succeeded=True)

    def record(self, run_key: str, entry: CacheEntry) -> None:
        flow_id, run_id = split_run_key(run_key)
        with transaction(self.engine) as conn:
            run_pk = conn.execute(
                sa.select(runs.c.id).where(runs.c.flow_id == flow_id, runs.c.run_id == run_id)
            ).scalar_one_or_none()
            if run_pk is None:
                return  # a run deleted meanwhile: nothing to explain any more
            row = {
                "run_pk": run_pk,
                "task_id": entry.task_id,
                "try_number": entry.try_number,
                "flow_id": flow_id,
                "cache_key": entry.fingerprint.key,
                "fingerprint": entry.fingerprint.to_dict(),
                "status": entry.status,
                "matched_run_id": entry.matched_run_id,
                "changes": [dict(c) for c in entry.changes],
                "result_keys": list(entry.result_keys),
                "succeeded": entry.succeeded,
                "created_at": utcnow(),
            }
            keys = ("run_pk", "task_id", "try_number")
            upsert(conn, tf, [row], keys=keys, update=tuple(k for k in row if k not in keys))


def _entry(row: Any) -> CacheEntry:
    return CacheEntry(
        run_id=row.run_id,
        task_id=row.task_id,
        try_number=row.try_number,
        fingerprint=Fingerprint.from_dict(row.fingerprint),
        status=row.status,
        succeeded=bool(row.succeeded),
        result_keys=tuple(row.result_keys),
        matched_run_id=row.matched_run_id,
        changes=tuple(row.changes),
        created_at=row.created_at,
    )


_COLUMNS = (
    runs.c.run_id,
    tf.c.task_id,
    tf.c.try_number,
    tf.c.fingerprint,
    tf.c.status,
    tf.c.succeeded,
    tf.c.result_keys,
    tf.c.matched_run_id,
    tf.c.changes,
    tf.c.created_at,
)


def latest_entry(
    conn: Connection,
    flow_id: str,
    task_id: str,
    *,
    cache_key: str | None = None,
    succeeded: bool | None = None,
    run_id: str | None = None,
    before: Any = None,
) -> CacheEntry | None:
    """The newest recorded try of a task matching every filter given."""
    stmt = (
        sa.select(*_COLUMNS)
        .select_from(tf.join(runs, runs.c.id == tf.c.run_pk))
        .where(tf.c.flow_id == flow_id, tf.c.task_id == task_id)
        .order_by(tf.c.created_at.desc(), tf.c.try_number.desc())
        .limit(1)
    )
    if cache_key is not None:
        stmt = stmt.where(tf.c.cache_key == cache_key)
    if succeeded is not None:
        stmt = stmt.where(tf.c.succeeded == succeeded)
    if run_id is not None:
        stmt = stmt.where(runs.c.run_id == run_id)
    if before is not None:
        stmt = stmt.where(tf.c.created_at < before)
    row = conn.execute(stmt).first()
    return _entry(row) if row is not None else None


def recorded_node(conn: Connection, run_pk: int, task_id: str) -> NodeSpec | None:
    """A task of a run as the run recorded it (its spec, with extra facts such as ``cache``)."""
    from ductwork.store.repo import _nodes
    from ductwork.store.tables import task_instances as ti

    row = conn.execute(
        sa.select(ti.c.node, ti.c.upstream).where(ti.c.run_pk == run_pk, ti.c.task_id == task_id)
    ).first()
    return _nodes.node_from_row(task_id, row.node, row.upstream) if row is not None else None
