"""Repair: the web access tables of databases that passed revision 0003 by.

Revision 0003 (users, API tokens, browser sessions) was inserted before 0004 after some
databases had been made at 0004 from a release without it: to Alembic those databases have
0003, yet lack its tables (`ductwork users list` failed with "no such table: users"). This
revision creates them where they are missing, exactly as 0003 does, and changes nothing else.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import importlib

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_WEB_ACCESS = "ductwork.store.migrations.versions.0003_users_and_tokens"


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    if "users" not in present:
        importlib.import_module(_WEB_ACCESS).upgrade()


def downgrade() -> None:
    """Nothing: the tables are 0003's."""
