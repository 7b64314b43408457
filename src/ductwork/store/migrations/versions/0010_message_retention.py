"""Message receipts and dead letters come under retention: an index on when each was received,
so that the retention pass finds the old ones without reading every row.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_message_receipts_received_at", "message_receipts", ["received_at"])
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_received_at", table_name="dead_letters")
    op.drop_index("ix_message_receipts_received_at", table_name="message_receipts")
