"""Whether a database is at the schema this code expects, without importing Alembic.

Every CLI command that reads the database asks this first; Alembic (and its migration scripts)
costs about 0.1 s to import, more than the rest of a command such as ``ductwork trigger``. Only
when the answer is no does ``store.migrate`` (Alembic) take over, to say why or to upgrade.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

HEAD_REVISION = "0013"
"""The newest migration in ``store/migrations/versions``; a test keeps it equal to Alembic's head."""

VERSION_TABLE = "ductwork_alembic_version"


def is_current(engine: Engine) -> bool:
    """True when the database's recorded revision is ``HEAD_REVISION``; False when it differs,
    has no version table yet, or cannot say (the caller then asks Alembic)."""
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    except DBAPIError:
        return False
    return found == [HEAD_REVISION]
