"""The audit log: one row per change made through the CLI, the API or the UI.

This layer stores what it is given; deciding what a change is called and keeping secrets out of
its details is ``ductwork.services.audit``'s job.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.store.records import Page
from ductwork.store.tables import audit_log
from ductwork.store.types import utcnow

a = audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """A change to record (``at`` defaults to now)."""

    actor: str
    via: str
    origin: str
    action: str
    target: str
    details: Mapping[str, Any] = field(default_factory=dict)
    at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: dt.datetime
    actor: str
    via: str
    origin: str
    action: str
    target: str
    details: Mapping[str, Any]


def add_entry(conn: Connection, entry: AuditEntry) -> None:
    conn.execute(
        sa.insert(a).values(
            at=entry.at or utcnow(),
            actor=entry.actor[:250],
            via=entry.via[:32],
            origin=entry.origin[:250],
            action=entry.action[:64],
            target=entry.target,
            details=dict(entry.details),
        )
    )


def list_entries(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    via: str | None = None,
    target: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page[AuditRecord]:
    """Entries matching every filter given, newest first. ``action`` matches an action or, ending
    in ``.``, a family of them (``run.`` for every change to runs); ``target`` matches a prefix."""
    where: list[Any] = []
    if actor is not None:
        where.append(a.c.actor == actor)
    if action is not None:
        where.append(_starts_with(a.c.action, action) if action.endswith(".") else a.c.action == action)
    if via is not None:
        where.append(a.c.via == via)
    if target is not None:
        where.append(_starts_with(a.c.target, target))
    if since is not None:
        where.append(a.c.at >= since)
    if until is not None:
        where.append(a.c.at < until)
    total = int(conn.execute(sa.select(sa.func.count()).select_from(a).where(*where)).scalar_one())
    stmt = sa.select(a).where(*where).order_by(a.c.at.desc(), a.c.id.desc()).limit(limit).offset(offset)
    items = tuple(
        AuditRecord(r.id, r.at, r.actor, r.via, r.origin, r.action, r.target, r.details) for r in conn.execute(stmt)
    )
    return Page(items=items, total=total, limit=limit, offset=offset)


def _starts_with(column: Any, prefix: str) -> Any:
    """A case-sensitive prefix match on every database: SQLite's LIKE ignores the case of ASCII
    letters where PostgreSQL's and MariaDB's (binary collation) do not, so ``target="etl"``
    found ``Etl/...`` on one and nothing on the others."""
    return sa.func.substr(column, 1, len(prefix)) == prefix


def delete_before(conn: Connection, cutoff: dt.datetime, *, limit: int = 5000) -> int:
    """Delete up to ``limit`` of the oldest entries recorded before ``cutoff``; how many went."""
    ids = conn.execute(sa.select(a.c.id).where(a.c.at < cutoff).order_by(a.c.id).limit(limit)).scalars().all()
    if not ids:
        return 0
    return int(conn.execute(sa.delete(a).where(a.c.id.in_(list(ids)))).rowcount)


def count_before(conn: Connection, cutoff: dt.datetime) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(a).where(a.c.at < cutoff)).scalar_one())
