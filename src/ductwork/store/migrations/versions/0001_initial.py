"""The initial schema: flows, runs, task instances and tries, results, events, pools, errors, jobs.

Revision ID: 0001
Revises:
Create Date: 2024-06-01

Constraint and index names are spelt out (they follow ``tables.NAMING_CONVENTION``) so that
later ``batch_alter_table`` migrations can refer to them on every backend.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from ductwork.store.types import JsonText, TaggedJsonText, UtcDateTime, long_binary, long_text

revision = "0001"
down_revision = None
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


def _id() -> sa.String:
    return sa.String(250)


def _big_id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "flows",
        sa.Column("flow_id", _id(), nullable=False),
        sa.Column("fileloc", long_text(), nullable=True),
        sa.Column("graph", JsonText(), nullable=False),
        sa.Column("version_hash", sa.String(64), nullable=False),
        sa.Column("schedule", sa.String(250), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("is_paused", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(250), nullable=False),
        sa.Column("tags", JsonText(), nullable=False),
        sa.Column("description", long_text(), nullable=False),
        sa.Column("style", sa.String(32), nullable=False),
        sa.Column("max_active_runs", sa.Integer(), nullable=False),
        sa.Column("next_logical_date", UtcDateTime(), nullable=True),
        sa.Column("next_interval_start", UtcDateTime(), nullable=True),
        sa.Column("next_interval_end", UtcDateTime(), nullable=True),
        sa.Column("last_parsed_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("flow_id", name="pk_flows"),
        **_OPTS,
    )
    op.create_index("ix_flows_is_active_is_paused", "flows", ["is_active", "is_paused"])

    op.create_table(
        "flow_versions",
        sa.Column("flow_id", _id(), nullable=False),
        sa.Column("version_hash", sa.String(64), nullable=False),
        sa.Column("graph", JsonText(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("flow_id", "version_hash", name="pk_flow_versions"),
        sa.ForeignKeyConstraint(
            ["flow_id"], ["flows.flow_id"], name="fk_flow_versions_flow_id_flows", ondelete="CASCADE"
        ),
        **_OPTS,
    )

    op.create_table(
        "runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("flow_id", _id(), nullable=False),
        sa.Column("run_id", _id(), nullable=False),
        sa.Column("run_type", sa.String(32), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("logical_date", UtcDateTime(), nullable=False),
        sa.Column("data_interval_start", UtcDateTime(), nullable=False),
        sa.Column("data_interval_end", UtcDateTime(), nullable=False),
        sa.Column("params", TaggedJsonText(), nullable=False),
        sa.Column("conf", TaggedJsonText(), nullable=False),
        sa.Column("graph_meta", JsonText(), nullable=False),
        sa.Column("version_hash", sa.String(64), nullable=False),
        sa.Column("queued_at", UtcDateTime(), nullable=True),
        sa.Column("start_date", UtcDateTime(), nullable=True),
        sa.Column("end_date", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("note", long_text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint("flow_id", "run_id", name="uq_runs_flow_id_run_id"),
        **_OPTS,
    )
    op.create_index("ix_runs_state", "runs", ["state"])
    op.create_index("ix_runs_flow_id_logical_date", "runs", ["flow_id", "logical_date"])

    op.create_table(
        "task_instances",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("task_id", _id(), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("max_tries", sa.Integer(), nullable=False),
        sa.Column("node", JsonText(), nullable=False),
        sa.Column("upstream", JsonText(), nullable=False),
        sa.Column("operator", sa.String(250), nullable=False),
        sa.Column("priority_weight", sa.Integer(), nullable=False),
        sa.Column("pool", _id(), nullable=False),
        sa.Column("pool_slots", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(250), nullable=False),
        sa.Column("group_id", _id(), nullable=True),
        sa.Column("start_date", UtcDateTime(), nullable=True),
        sa.Column("end_date", UtcDateTime(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("hostname", sa.String(250), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=True),
        sa.Column("next_try_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_pk", "task_id", name="pk_task_instances"),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name="fk_task_instances_run_pk_runs", ondelete="CASCADE"),
        **_OPTS,
    )
    op.create_index("ix_task_instances_run_pk_state", "task_instances", ["run_pk", "state"])

    op.create_table(
        "task_tries",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("task_id", _id(), nullable=False),
        sa.Column("try_number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("start_date", UtcDateTime(), nullable=True),
        sa.Column("end_date", UtcDateTime(), nullable=True),
        sa.Column("duration", sa.Float(), nullable=True),
        sa.Column("hostname", sa.String(250), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("error", long_text(), nullable=True),
        sa.Column("traceback", long_text(), nullable=True),
        sa.Column("log_path", long_text(), nullable=True),
        sa.Column("rendered", TaggedJsonText(), nullable=True),
        sa.PrimaryKeyConstraint("run_pk", "task_id", "try_number", name="pk_task_tries"),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name="fk_task_tries_run_pk_runs", ondelete="CASCADE"),
        **_OPTS,
    )

    op.create_table(
        "task_results",
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("task_id", _id(), nullable=False),
        sa.Column("key", _id(), nullable=False),
        sa.Column("value", long_binary(), nullable=True),
        sa.Column("serializer", sa.String(32), nullable=False),
        sa.Column("reference", long_text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("run_pk", "task_id", "key", name="pk_task_results"),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name="fk_task_results_run_pk_runs", ondelete="CASCADE"),
        **_OPTS,
    )

    op.create_table(
        "state_events",
        sa.Column("id", _big_id(), autoincrement=True, nullable=False),
        sa.Column("run_pk", sa.Integer(), nullable=False),
        sa.Column("task_id", _id(), nullable=True),
        sa.Column("old", sa.String(32), nullable=True),
        sa.Column("new", sa.String(32), nullable=False),
        sa.Column("reason", long_text(), nullable=False),
        sa.Column("try_number", sa.Integer(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_state_events"),
        sa.ForeignKeyConstraint(["run_pk"], ["runs.id"], name="fk_state_events_run_pk_runs", ondelete="CASCADE"),
        **_OPTS,
    )
    op.create_index("ix_state_events_run_pk", "state_events", ["run_pk"])

    pools = op.create_table(
        "pools",
        sa.Column("name", _id(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("description", long_text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_pools"),
        **_OPTS,
    )
    op.bulk_insert(pools, [{"name": "default_pool", "slots": 128, "description": "Default pool"}])

    op.create_table(
        "import_errors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fileloc", long_text(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("error", long_text(), nullable=False),
        sa.Column("traceback", long_text(), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_import_errors"),
        **_OPTS,
    )

    op.create_table(
        "scheduler_jobs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("hostname", sa.String(250), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
        sa.Column("end_date", UtcDateTime(), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_scheduler_jobs"),
        **_OPTS,
    )
    op.create_index("ix_scheduler_jobs_kind_state", "scheduler_jobs", ["kind", "state"])


def downgrade() -> None:
    for table in (
        "scheduler_jobs",
        "import_errors",
        "pools",
        "state_events",
        "task_results",
        "task_tries",
        "task_instances",
        "runs",
        "flow_versions",
        "flows",
    ):
        op.drop_table(table)
