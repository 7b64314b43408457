"""Alembic environment: runs on the connection ``ductwork.store.migrate`` hands over.

There is no ``alembic.ini`` and no URL here; the caller passes an open connection in
``config.attributes["connection"]``. ``render_as_batch`` makes autogenerate write
``batch_alter_table`` blocks, so the one stream of migrations also works on SQLite.
"""

from __future__ import annotations

from alembic import context

from ductwork.store.migrate import VERSION_TABLE
from ductwork.store.tables import metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("ductwork migrations need a connection in config.attributes['connection']")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=True,
        compare_type=True,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("ductwork migrations run online only: use `ductwork db upgrade`")
run_migrations_online()
