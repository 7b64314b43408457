"""Schema migrations, driven from code: no ``alembic.ini`` and no working directory needed.

There is one stream of Alembic revisions for every backend, shipped inside the package
(``ductwork/store/migrations``). ``upgrade`` brings a database to the head revision,
``check`` tells a process at start-up whether the database matches the code, and
``schema_diff`` is what the tests use to prove the migrations build exactly ``tables.metadata``.

The version is kept in ``ductwork_alembic_version`` rather than Alembic's default table name,
so a database shared with another Alembic-managed application cannot confuse the two.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from ductwork.store import schema_version
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.errors import SchemaMismatchError
from ductwork.store.migration_lock import migration_lock
from ductwork.store.tables import metadata

VERSION_TABLE = schema_version.VERSION_TABLE
SCRIPT_LOCATION = "ductwork.store:migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for Ductwork's migrations, bound to ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("no migrations found in ductwork.store.migrations")
    return head


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` when it has no Ductwork schema."""
    with read_transaction(engine) as conn:
        return revision_of(conn)


def revision_of(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Migrate the database up to ``revision`` (creating the schema if empty); returns the new revision.

    Idempotent: at the head it does nothing. Safe to call from several processes at once.
    """
    with migration_lock(engine), transaction(engine) as conn:
        found = revision_of(conn)
        if found is not None and found not in known_revisions():
            raise mismatch(found)  # ahead of this code: said clearly, not Alembic's "can't locate revision"
        command.upgrade(alembic_config(conn), revision)
        current = revision_of(conn)
    return current or ""


def check(engine: Engine) -> str:
    """Return the database's revision when it is the head; otherwise raise ``SchemaMismatchError``
    saying whether the database is empty, behind (run ``ductwork db upgrade``) or ahead (newer
    Ductwork)."""
    current = current_revision(engine)
    if current == head_revision():
        return current
    raise mismatch(current)


def mismatch(current: str | None) -> SchemaMismatchError:
    """Why a database at ``current`` (None: no schema) is not this code's: empty, behind or ahead."""
    head = head_revision()
    if current is None:
        message = "the database has no Ductwork schema yet; create it with `ductwork db init`"
    elif current in known_revisions():
        message = (
            f"the database schema is behind this version of Ductwork (database at revision {current}, "
            f"code expects {head}); run `ductwork db upgrade`"
        )
    else:
        message = (
            f"the database schema is ahead of this version of Ductwork (database at revision {current}, "
            f"which this code does not know; newest known is {head}); upgrade Ductwork to the version that "
            "migrated the database"
        )
    return SchemaMismatchError(message, current=current, head=head)


def drop_all(engine: Engine) -> None:
    """Drop every Ductwork table and the version table. Destroys all data."""
    with transaction(engine) as conn:
        metadata.drop_all(conn)
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))


def reset(engine: Engine) -> str:
    """Drop everything and migrate an empty database to the head; returns the revision."""
    drop_all(engine)
    return upgrade(engine)


def schema_diff(engine: Engine) -> list[Any]:
    """Alembic's autogenerate differences between the database and ``tables.metadata``
    (empty when the migrations and the table definitions agree)."""
    with read_transaction(engine) as conn:
        context = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE, "compare_type": True, "target_metadata": metadata}
        )
        return list(compare_metadata(context, metadata))
