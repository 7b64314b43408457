"""Stored versions of declarative pipelines (``ductwork pipelines put``), and which is active.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from ductwork.store.types import UtcDateTime, long_text

revision = "0007"
down_revision = "0006"
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
        "pipeline_versions",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("definition", long_text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(250), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("activated_at", UtcDateTime(), nullable=True),
        sa.Column("deactivated_at", UtcDateTime(), nullable=True),
        sa.Column("run_requested_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", "version", name="pk_pipeline_versions"),
        **_OPTS,
    )
    op.create_index("ix_pipeline_versions_active", "pipeline_versions", ["is_active", "name"])


def downgrade() -> None:
    op.drop_index("ix_pipeline_versions_active", table_name="pipeline_versions")
    op.drop_table("pipeline_versions")
