"""A new database's schema in one step, without Alembic.

The first command on a new ``DUCTWORK_HOME`` (``make demo``, a first ``ductwork run``, every
test's or benchmark's fresh home) used to import Alembic (0.15 s) and replay every migration
(0.11 s on SQLite): more than the rest of the command. The tables are defined once, in
``tables.metadata``, and a contract test proves that the migrations build exactly that schema
and that this module builds the same one (tables, columns, defaults, keys, indexes, the rows the
migrations seed). So a database with no Ductwork table at all gets ``metadata.create_all``, the
seeded rows and the head revision in Alembic's version table, in one transaction under the
migration lock, as if ``ductwork db init`` had run.

A database with any Ductwork table (an older schema, a partial one) is left to Alembic
(``store.migrate``), and ``ductwork db init`` / ``ductwork db upgrade`` always run the
migrations themselves.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from ductwork.core.graph import DEFAULT_POOL
from ductwork.store.engine import transaction
from ductwork.store.migration_lock import migration_lock
from ductwork.store.schema_version import HEAD_REVISION, VERSION_TABLE, is_current
from ductwork.store.tables import DEFAULT_POOL_SLOTS, metadata, pools


def _version_table() -> sa.Table:
    """Alembic's version table, as Alembic itself creates it (its primary key named ``<table>_pkc``)."""
    return sa.Table(
        VERSION_TABLE,
        sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )


def _is_empty(conn: Connection) -> bool:
    existing = set(sa.inspect(conn).get_table_names())
    return not (existing & ({VERSION_TABLE} | set(metadata.tables)))


def create_if_empty(engine: Engine) -> bool:
    """Create the whole schema at the head revision when the database has no Ductwork table;
    False (nothing done) when it has one, for Alembic to check or upgrade."""
    with migration_lock(engine), transaction(engine) as conn:
        if not _is_empty(conn):
            return False
        metadata.create_all(conn)
        conn.execute(
            sa.insert(pools), [{"name": DEFAULT_POOL, "slots": DEFAULT_POOL_SLOTS, "description": "Default pool"}]
        )
        version = _version_table()
        version.create(conn)
        conn.execute(sa.insert(version), [{"version_num": HEAD_REVISION}])
    return True


def ensure_schema(engine: Engine) -> None:
    """The database at the code's schema: as it is (the usual case, answered without Alembic),
    created when empty, migrated by Alembic when it has no version yet; a database behind or
    ahead of the code raises ``SchemaMismatchError`` saying what to run."""
    if is_current(engine) or create_if_empty(engine):
        return
    from ductwork.store import migrate

    if migrate.current_revision(engine) is None:
        migrate.upgrade(engine)
    migrate.check(engine)
