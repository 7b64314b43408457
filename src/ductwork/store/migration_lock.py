"""The lock that serializes schema changes between processes, without importing Alembic.

A scheduler and a CLI command may both find an empty database and set it up: Alembic's
migrations (``store.migrate``) and the one-step creation of a new database
(``store.fresh_schema``) both run under this lock, so one of them does the work and the other
finds it done.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine

_LOCK_KEY = 0x64756374  # "duct": the advisory lock that serializes migrations on a server


@contextlib.contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Held while a process changes the schema: SQLite takes a lock file beside the database,
    PostgreSQL and MariaDB a named lock on a connection of their own."""
    backend = engine.dialect.name
    if backend == "sqlite":
        with _file_lock(engine):
            yield
        return
    if backend not in ("postgresql", "mysql", "mariadb"):
        yield
        return
    with engine.connect() as conn:
        if backend == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_lock({_LOCK_KEY})")
        else:
            conn.exec_driver_sql("SELECT GET_LOCK('ductwork_migrations', 300)")
        conn.commit()
        try:
            yield
        finally:
            if backend == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_LOCK_KEY})")
            else:
                conn.exec_driver_sql("SELECT RELEASE_LOCK('ductwork_migrations')")
            conn.commit()


@contextlib.contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """A lock file beside a SQLite database: its own locking lets a schema change and another
    process's first look at the schema interleave badly while the file is being created."""
    import fcntl

    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        yield
        return
    path = Path(database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.migrate.lock", "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
