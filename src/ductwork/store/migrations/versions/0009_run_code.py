"""The code a flow was parsed from and a run was created from: content hashes of the flow's
files and the git commit (``engine.code_info``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ductwork.store.types import JsonText

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flows") as batch:
        batch.add_column(sa.Column("code", JsonText(), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("code", JsonText(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("code")
    with op.batch_alter_table("flows") as batch:
        batch.drop_column("code")
