"""The executor a scheduler runs its tries with, in its job row.

A scheduler with the local executor runs tries in its own workers, which no other scheduler
sees: it refused to start beside another, but a Celery scheduler started after it did not
know (the job row did not say which executor the first one used), and the two ran the same
runs' tasks. Rows of schedulers from before this revision have no executor (NULL).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduler_jobs") as batch:
        batch.add_column(sa.Column("executor", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scheduler_jobs") as batch:
        batch.drop_column("executor")
