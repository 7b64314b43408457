"""Data-aware and event-driven runs: assets and their events, message receipts and dead
letters, task fingerprints for incremental recomputation, and what triggered a run.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from ductwork.store.types import JsonText, TaggedJsonText, UtcDateTime, long_text

revision = "0008"
down_revision = "0007"
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
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("triggered_by", JsonText(), nullable=True))
    op.create_table(
        "assets",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uri", sa.String(700), nullable=False),
        sa.Column("extra", JsonText(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_assets"),
        sa.UniqueConstraint("uri", name="uq_assets_uri"),
        **_OPTS,
    )
    op.create_table(
        "asset_refs",
        sa.Column("flow_id", sa.String(250), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name="fk_asset_refs_asset_id_assets", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("flow_id", "asset_id", "kind", "task_id", name="pk_asset_refs"),
        **_OPTS,
    )
    op.create_index("ix_asset_refs_asset_id", "asset_refs", ["asset_id"])
    op.create_table(
        "asset_events",
        sa.Column("id", _BIG_ID, autoincrement=True, nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.Column("source_flow_id", sa.String(250), nullable=True),
        sa.Column("source_run_id", sa.String(250), nullable=True),
        sa.Column("source_task_id", sa.String(250), nullable=True),
        sa.Column("extra", TaggedJsonText(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name="fk_asset_events_asset_id_assets", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_asset_events"),
        **_OPTS,
    )
    op.create_index("ix_asset_events_asset_id_id", "asset_events", ["asset_id", "id"])
    op.create_table(
        "asset_queue",
        sa.Column("flow_id", sa.String(250), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("asset_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["asset_events.id"], name="fk_asset_queue_event_id_asset_events", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["asset_id"], ["assets.id"], name="fk_asset_queue_asset_id_assets", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("flow_id", "event_id", name="pk_asset_queue"),
        **_OPTS,
    )
    op.create_table(
        "asset_run_events",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name="fk_asset_run_events_run_pk_runs", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["event_id"], ["asset_events.id"], name="fk_asset_run_events_event_id_asset_events", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("run_pk", "event_id", name="pk_asset_run_events"),
        **_OPTS,
    )
    op.create_index("ix_asset_run_events_event_id", "asset_run_events", ["event_id"])
    op.create_table(
        "message_receipts",
        sa.Column("flow_id", sa.String(250), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=True),
        sa.Column("dead_letter_id", sa.Integer(), nullable=True),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("flow_id", "source", "message_id", name="pk_message_receipts"),
        **_OPTS,
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flow_id", sa.String(250), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("payload", long_text(), nullable=False),
        sa.Column("reason", long_text(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
        **_OPTS,
    )
    op.create_index("ix_dead_letters_flow_id", "dead_letters", ["flow_id"])
    op.create_table(
        "task_fingerprints",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(250), nullable=False),
        sa.Column("try_number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("flow_id", sa.String(250), nullable=False),
        sa.Column("cache_key", sa.String(32), nullable=False),
        sa.Column("fingerprint", JsonText(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("matched_run_id", sa.String(250), nullable=True),
        sa.Column("changes", JsonText(), nullable=False),
        sa.Column("result_keys", JsonText(), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name="fk_task_fingerprints_run_pk_runs", ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_pk", "task_id", "try_number", name="pk_task_fingerprints"),
        **_OPTS,
    )
    op.create_index("ix_task_fingerprints_lookup", "task_fingerprints", ["flow_id", "task_id", "cache_key"])


def downgrade() -> None:
    op.drop_table("task_fingerprints")
    op.drop_table("dead_letters")
    op.drop_table("message_receipts")
    op.drop_table("asset_run_events")
    op.drop_table("asset_queue")
    op.drop_table("asset_events")
    op.drop_table("asset_refs")
    op.drop_table("assets")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("triggered_by")
