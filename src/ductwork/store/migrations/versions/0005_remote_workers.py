"""Past one machine: remote workers, code bundles, the full outcome of a remote try, and the
owner and fencing number of a run (several schedulers on one database).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from ductwork.store.types import JsonText, UtcDateTime, long_binary, long_text

revision = "0005"
down_revision = "0004"
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
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("fence", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("task_tries") as batch:
        batch.add_column(sa.Column("outcome", JsonText(), nullable=True))
    op.create_table(
        "workers",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("hostname", sa.String(250), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("queues", JsonText(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("slots_used", sa.Integer(), nullable=False),
        sa.Column("current", JsonText(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_workers"),
        **_OPTS,
    )
    op.create_index("ix_workers_state", "workers", ["state"])
    op.create_table(
        "code_bundles",
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("data", long_binary(), nullable=True),
        sa.Column("location", long_text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("hash", name="pk_code_bundles"),
        **_OPTS,
    )


def downgrade() -> None:
    op.drop_table("code_bundles")
    op.drop_index("ix_workers_state", table_name="workers")
    op.drop_table("workers")
    with op.batch_alter_table("task_tries") as batch:
        batch.drop_column("outcome")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("fence")
        batch.drop_column("owner")
