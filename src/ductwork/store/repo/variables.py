"""Variables as stored rows: set, get, list, delete (values are Fernet tokens when encrypted)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.errors import NotFoundError
from ductwork.store.tables import variables
from ductwork.store.types import utcnow
from ductwork.store.upsert import upsert

v = variables


@dataclass(frozen=True)
class StoredVariable:
    key: str
    value: str
    is_encrypted: bool
    description: str
    updated_at: dt.datetime | None = None


def set_variable(
    conn: Connection,
    key: str,
    value: str,
    *,
    is_encrypted: bool,
    description: str = "",
    now: dt.datetime | None = None,
) -> None:
    at = now or utcnow()
    row = {
        "key": key,
        "value": value,
        "is_encrypted": is_encrypted,
        "description": description,
        "created_at": at,
        "updated_at": at,
    }
    upsert(conn, v, [row], keys=("key",), update=("value", "is_encrypted", "description", "updated_at"))


def _record(r: sa.Row[tuple[object, ...]]) -> StoredVariable:
    m = r._mapping
    return StoredVariable(m["key"], m["value"], bool(m["is_encrypted"]), m["description"], m["updated_at"])


def get_variable(conn: Connection, key: str) -> StoredVariable | None:
    row = conn.execute(sa.select(v).where(v.c.key == key)).first()
    return _record(row) if row is not None else None


def list_variables(conn: Connection) -> list[StoredVariable]:
    return [_record(r) for r in conn.execute(sa.select(v).order_by(v.c.key))]


def delete_variable(conn: Connection, key: str) -> None:
    if conn.execute(sa.delete(v).where(v.c.key == key)).rowcount == 0:
        raise NotFoundError(f"no variable {key!r} in the database")


def updated_at(conn: Connection, keys: set[str]) -> dict[str, dt.datetime]:
    """When each of the variables ``keys`` that exist last changed."""
    found: dict[str, dt.datetime] = {}
    names = sorted(keys)
    for start in range(0, len(names), 500):
        rows = conn.execute(
            sa.select(variables.c.key, variables.c.updated_at).where(variables.c.key.in_(names[start : start + 500]))
        )
        found.update((row.key, row.updated_at) for row in rows)
    return found
