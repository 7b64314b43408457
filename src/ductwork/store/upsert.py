"""Insert-or-update in one statement, on every backend.

PostgreSQL and SQLite say ``INSERT ... ON CONFLICT DO UPDATE``, MariaDB says ``INSERT ... ON
DUPLICATE KEY UPDATE``; this is the one place that knows. Used for rows a writer may see
twice (a try recorded by the worker and by the scheduler, a result pushed again).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str],
    update: Sequence[str],
) -> None:
    """Insert ``rows`` (all with the same columns); where a row with the same ``keys`` exists,
    overwrite only the ``update`` columns with the new values. One executemany."""
    if not rows:
        return
    conn.execute(upsert_statement(conn.dialect.name, table, tuple(keys), tuple(update)), list(rows))


_CACHE: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def upsert_statement(name: str, table: Table, keys: tuple[str, ...], update: tuple[str, ...]) -> Any:
    """The upsert statement for a dialect, built once per shape."""
    cache_key = (name, table.name, keys, update)
    cached = _CACHE.get(cache_key)
    if cached is not None:
        return cached
    # Each dialect's module is imported when first used: importing sqlalchemy.dialects.postgresql
    # (and its asyncpg module) costs a SQLite command 30 ms.
    if name in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql

        my = mysql.insert(table)
        # With nothing to update, set a key column to itself: a no-op that, unlike INSERT IGNORE,
        # does not also swallow unrelated errors.
        targets = update or keys[:1]
        stmt: Any = my.on_duplicate_key_update({c: my.inserted[c] for c in targets})
    elif name in ("postgresql", "sqlite"):
        ins: Any = _dialect_insert(name, table)
        if update:
            stmt = ins.on_conflict_do_update(index_elements=list(keys), set_={c: ins.excluded[c] for c in update})
        else:
            stmt = ins.on_conflict_do_nothing(index_elements=list(keys))
    else:  # pragma: no cover - the three supported backends are covered above
        raise NotImplementedError(f"upsert is not implemented for {name}")
    _CACHE[cache_key] = stmt
    return stmt


def _dialect_insert(name: str, table: Table) -> Any:
    if name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table)
