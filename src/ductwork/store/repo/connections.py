"""Connections as stored rows: put, get, list, delete.

This layer stores what it is given; encrypting the password and extra before they get here,
and decrypting them after, is ``ductwork.store.secrets``'s job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.errors import NotFoundError
from ductwork.store.tables import connections
from ductwork.store.types import utcnow
from ductwork.store.upsert import upsert

c = connections


@dataclass(frozen=True)
class StoredConnection:
    """A connection row; ``password`` and ``extra`` are Fernet tokens when ``is_encrypted``."""

    conn_id: str
    conn_type: str
    host: str | None
    schema: str | None
    login: str | None
    password: str | None
    port: int | None
    extra: str | None
    is_encrypted: bool
    description: str
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


def put_connection(conn: Connection, row: StoredConnection, *, now: dt.datetime | None = None) -> None:
    """Create or replace a connection."""
    at = now or utcnow()
    values = {
        "conn_id": row.conn_id,
        "conn_type": row.conn_type,
        "host": row.host,
        "schema": row.schema,
        "login": row.login,
        "password": row.password,
        "port": row.port,
        "extra": row.extra,
        "is_encrypted": row.is_encrypted,
        "description": row.description,
        "created_at": at,
        "updated_at": at,
    }
    update = [k for k in values if k not in ("conn_id", "created_at")]
    upsert(conn, c, [values], keys=("conn_id",), update=update)


def _record(r: sa.Row[tuple[object, ...]]) -> StoredConnection:
    m = r._mapping
    return StoredConnection(
        conn_id=m["conn_id"],
        conn_type=m["conn_type"],
        host=m["host"],
        schema=m["schema"],
        login=m["login"],
        password=m["password"],
        port=m["port"],
        extra=m["extra"],
        is_encrypted=bool(m["is_encrypted"]),
        description=m["description"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def get_connection(conn: Connection, conn_id: str) -> StoredConnection | None:
    row = conn.execute(sa.select(c).where(c.c.conn_id == conn_id)).first()
    return _record(row) if row is not None else None


def list_connections(conn: Connection) -> list[StoredConnection]:
    return [_record(r) for r in conn.execute(sa.select(c).order_by(c.c.conn_id))]


def delete_connection(conn: Connection, conn_id: str) -> None:
    if conn.execute(sa.delete(c).where(c.c.conn_id == conn_id)).rowcount == 0:
        raise NotFoundError(f"no connection {conn_id!r} in the database")
