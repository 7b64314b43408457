"""Stored versions of declarative pipelines: put, list, activate, deactivate, run requests."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.errors import NotFoundError, did_you_mean
from ductwork.store.tables import pipeline_versions
from ductwork.store.types import utcnow

pv = pipeline_versions


@dataclass(frozen=True)
class PipelineVersion:
    name: str
    version: int
    format: str
    definition: str
    digest: str
    created_at: dt.datetime
    created_by: str
    is_active: bool
    activated_at: dt.datetime | None
    deactivated_at: dt.datetime | None
    run_requested_at: dt.datetime | None


def _record(row: sa.Row[tuple[object, ...]]) -> PipelineVersion:
    m = row._mapping
    return PipelineVersion(
        m["name"],
        int(m["version"]),
        m["format"],
        m["definition"],
        m["digest"],
        m["created_at"],
        m["created_by"],
        bool(m["is_active"]),
        m["activated_at"],
        m["deactivated_at"],
        m["run_requested_at"],
    )


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def put_version(
    conn: Connection, name: str, fmt: str, definition: str, *, created_by: str = "", now: dt.datetime | None = None
) -> tuple[PipelineVersion, bool]:
    """Store ``definition`` as the next version of ``name``; (version, created). The same text as
    the latest version stores nothing new."""
    latest = latest_version(conn, name)
    text_digest = digest(definition)
    if latest is not None and latest.digest == text_digest and latest.format == fmt:
        return latest, False
    number = (latest.version if latest else 0) + 1
    conn.execute(
        sa.insert(pv).values(
            name=name,
            version=number,
            format=fmt,
            definition=definition,
            digest=text_digest,
            created_at=now or utcnow(),
            created_by=created_by,
            is_active=False,
        )
    )
    stored = get_version(conn, name, number)
    assert stored is not None
    return stored, True


def get_version(conn: Connection, name: str, version: int) -> PipelineVersion | None:
    row = conn.execute(sa.select(pv).where(pv.c.name == name, pv.c.version == version)).first()
    return _record(row) if row is not None else None


def latest_version(conn: Connection, name: str) -> PipelineVersion | None:
    row = conn.execute(sa.select(pv).where(pv.c.name == name).order_by(pv.c.version.desc()).limit(1)).first()
    return _record(row) if row is not None else None


def active_version(conn: Connection, name: str) -> PipelineVersion | None:
    row = conn.execute(sa.select(pv).where(pv.c.name == name, pv.c.is_active == sa.true())).first()
    return _record(row) if row is not None else None


def versions(conn: Connection, name: str) -> list[PipelineVersion]:
    return [_record(r) for r in conn.execute(sa.select(pv).where(pv.c.name == name).order_by(pv.c.version))]


def names(conn: Connection) -> list[str]:
    return [str(n) for n in conn.execute(sa.select(pv.c.name).distinct().order_by(pv.c.name)).scalars()]


def active_versions(conn: Connection) -> list[PipelineVersion]:
    return [_record(r) for r in conn.execute(sa.select(pv).where(pv.c.is_active == sa.true()).order_by(pv.c.name))]


def require_version(conn: Connection, name: str, version: int | None) -> PipelineVersion:
    """The version asked for (the latest by default); ``NotFoundError`` naming what exists."""
    found = latest_version(conn, name) if version is None else get_version(conn, name, version)
    if found is not None:
        return found
    known = names(conn)
    if name not in known:
        raise NotFoundError(
            f"no stored pipeline {name!r}.{did_you_mean(name, known)} Stored: {', '.join(known) or '(none)'}; "
            "store one with: ductwork pipelines put FILE"
        )
    numbers = [str(v.version) for v in versions(conn, name)]
    raise NotFoundError(f"pipeline {name!r} has no version {version}; versions: {', '.join(numbers)}")


def activate(
    conn: Connection, name: str, version: int, *, request_run: bool, now: dt.datetime | None = None
) -> PipelineVersion:
    """Make ``version`` the one that runs (the first activation's time is kept: AWS's
    FIRST_ACTIVATION_DATE_TIME); ``request_run`` asks the scheduler for a run (on-demand)."""
    at = now or utcnow()
    previous = active_version(conn, name)
    conn.execute(sa.update(pv).where(pv.c.name == name, pv.c.is_active == sa.true()).values(is_active=False))
    first = previous.activated_at if previous is not None and previous.activated_at is not None else at
    conn.execute(
        sa.update(pv)
        .where(pv.c.name == name, pv.c.version == version)
        .values(
            is_active=True,
            activated_at=first,
            deactivated_at=None,
            run_requested_at=at if request_run else None,
        )
    )
    stored = get_version(conn, name, version)
    assert stored is not None
    return stored


def deactivate(conn: Connection, name: str, *, now: dt.datetime | None = None) -> PipelineVersion | None:
    """Mark the active version deactivated (it stays the active one, paused); None if none is active."""
    current = active_version(conn, name)
    if current is None:
        return None
    conn.execute(
        sa.update(pv)
        .where(pv.c.name == name, pv.c.version == current.version)
        .values(deactivated_at=now or utcnow(), run_requested_at=None)
    )
    return get_version(conn, name, current.version)


def claim_run_request(conn: Connection, name: str, version: int) -> bool:
    """Take an on-demand activation's run request; only one claimer (of several schedulers) wins."""
    result = conn.execute(
        sa.update(pv)
        .where(pv.c.name == name, pv.c.version == version, pv.c.run_requested_at.is_not(None))
        .values(run_requested_at=None)
    )
    return result.rowcount == 1
