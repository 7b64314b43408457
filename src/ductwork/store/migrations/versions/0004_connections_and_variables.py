"""Connections and variables, their secret parts encrypted with Fernet.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from ductwork.store.types import UtcDateTime, long_text

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_OPTS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mariadb_engine": "InnoDB",
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
}


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("conn_id", sa.String(250), nullable=False),
        sa.Column("conn_type", sa.String(64), nullable=False),
        sa.Column("host", long_text(), nullable=True),
        sa.Column("schema", long_text(), nullable=True),
        sa.Column("login", long_text(), nullable=True),
        sa.Column("password", long_text(), nullable=True),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("extra", long_text(), nullable=True),
        sa.Column("is_encrypted", sa.Boolean(), nullable=False),
        sa.Column("description", long_text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("conn_id", name="pk_connections"),
        **_OPTS,
    )
    op.create_table(
        "variables",
        sa.Column("key", sa.String(250), nullable=False),
        sa.Column("value", long_text(), nullable=False),
        sa.Column("is_encrypted", sa.Boolean(), nullable=False),
        sa.Column("description", long_text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_variables"),
        **_OPTS,
    )


def downgrade() -> None:
    op.drop_table("variables")
    op.drop_table("connections")
