"""What keeps a scheduler from starting any try (a platform fault), in its job row.

A scheduler that cannot write its log folder or journal (a full disk, a read-only mount) says
so on its own web server (``standalone``), but a web server in another process read only the
job's heartbeat, found it fresh and answered "ok" while every run sat queued. The scheduler
writes the fault with its heartbeat (NULL when there is none); rows from before have NULL.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ductwork.store.types import long_text

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduler_jobs") as batch:
        batch.add_column(sa.Column("fault", long_text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scheduler_jobs") as batch:
        batch.drop_column("fault")
