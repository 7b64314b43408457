"""The metadata database, as SQLAlchemy Core tables.

Core rather than the ORM: the scheduler writes thousands of rows per step, and executemany of a
Core statement is one round trip where ORM unit-of-work flushes are one object at a time.
Repositories (``ductwork.store.repo``) turn rows into frozen records, so nothing outside the
store sees a row or a session.

Every timestamp is ``UtcDateTime`` (aware UTC on every backend). Ids are ``VARCHAR(250)``.
MariaDB tables use a binary collation, so ids compare exactly as they do on PostgreSQL and
SQLite ("ETL" and "etl" are two flows, "a " and "a" two tasks).

This module is the reference the migrations must match: a test runs Alembic's autogenerate
comparison of the migrated database against ``metadata`` on every backend.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    false,
)

from ductwork.store.types import JsonText, TaggedJsonText, UtcDateTime, id_string, long_binary, long_text

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Named constraints, so future ``batch_alter_table`` migrations on SQLite can find them."""

TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
    "mariadb_engine": "InnoDB",
    "mariadb_charset": "utf8mb4",
    "mariadb_collate": "utf8mb4_bin",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only auto-increments an INTEGER PRIMARY KEY, not a BIGINT one.
BigId = BigInteger().with_variant(Integer(), "sqlite")

flows = Table(
    "flows",
    metadata,
    Column("flow_id", id_string(), primary_key=True),
    Column("fileloc", long_text(), nullable=True),
    Column("graph", JsonText(), nullable=False),
    Column("version_hash", String(64), nullable=False),
    Column("schedule", String(250), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("is_paused", Boolean(), nullable=False),
    Column("is_active", Boolean(), nullable=False),
    Column("owner", String(250), nullable=False),
    Column("tags", JsonText(), nullable=False),
    Column("description", long_text(), nullable=False),
    Column("style", String(32), nullable=False),
    Column("max_active_runs", Integer(), nullable=False),
    Column("next_logical_date", UtcDateTime(), nullable=True),
    Column("next_interval_start", UtcDateTime(), nullable=True),
    Column("next_interval_end", UtcDateTime(), nullable=True),
    Column("last_parsed_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # The code the flow was last parsed from: {"hash", "files": {name: hash}, "git": {...}} (0009).
    Column("code", JsonText(), nullable=True),
    Index("ix_flows_is_active_is_paused", "is_active", "is_paused"),
    **TABLE_OPTIONS,
)

flow_versions = Table(
    "flow_versions",
    metadata,
    Column("flow_id", id_string(), ForeignKey("flows.flow_id", ondelete="CASCADE"), primary_key=True),
    Column("version_hash", String(64), primary_key=True),
    Column("graph", JsonText(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    **TABLE_OPTIONS,
)

# No foreign key from runs to flows: a run's history outlives its flow's code, and runs started
# from a file (``ductwork run``) need no registered flow. The run records its own graph.
runs = Table(
    "runs",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("flow_id", id_string(), nullable=False),
    Column("run_id", id_string(), nullable=False),
    Column("run_type", String(32), nullable=False),
    Column("state", String(32), nullable=False),
    Column("logical_date", UtcDateTime(), nullable=False),
    Column("data_interval_start", UtcDateTime(), nullable=False),
    Column("data_interval_end", UtcDateTime(), nullable=False),
    Column("params", TaggedJsonText(), nullable=False),
    Column("conf", TaggedJsonText(), nullable=False),
    Column("graph_meta", JsonText(), nullable=False),
    Column("version_hash", String(64), nullable=False),
    Column("queued_at", UtcDateTime(), nullable=True),
    Column("start_date", UtcDateTime(), nullable=True),
    Column("end_date", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("note", long_text(), nullable=True),
    # Bumped by every change made from outside the scheduler (clear, mark, cancel), so a running
    # scheduler knows to reload the run instead of trusting its memory of it.
    Column("revision", Integer(), nullable=False, server_default="0"),
    # A run of a flow whose graph depends on the run (class tasks): the parsing process builds
    # the graph before the run can start.
    Column("graph_pending", Boolean(), nullable=False, server_default=false()),
    # Several schedulers on one database (migration 0005): the scheduler job that drives the run
    # (NULL: none yet) and a fencing number bumped whenever the run changes hands, so that a
    # scheduler that lost it can no longer write to it.
    Column("owner", Integer(), nullable=True),  # IN_PROCESS_OWNER: a command's own (ductwork run)
    Column("fence", Integer(), nullable=False, server_default="0"),
    # What started the run when it was not a person or the clock (migration 0008): the asset
    # events or the message behind it, shown with the run and given to its tasks' context.
    Column("triggered_by", JsonText(), nullable=True),
    # The code the run was created from (the flow's ``code`` then; migration 0009).
    Column("code", JsonText(), nullable=True),
    UniqueConstraint("flow_id", "run_id"),
    Index("ix_runs_state", "state"),
    Index("ix_runs_flow_id_logical_date", "flow_id", "logical_date"),
    **TABLE_OPTIONS,
)

task_instances = Table(
    "task_instances",
    metadata,
    Column("run_pk", Integer(), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", id_string(), primary_key=True),
    # Position in the run's graph when the node was added; keeps the authoring order on reload.
    Column("ordinal", Integer(), nullable=False),
    Column("state", String(32), nullable=False),
    Column("try_number", Integer(), nullable=False),
    Column("max_tries", Integer(), nullable=False),
    # The NodeSpec without its upstream list, which lives in ``upstream`` (one source of truth).
    Column("node", JsonText(), nullable=False),
    Column("upstream", JsonText(), nullable=False),
    Column("operator", String(250), nullable=False),
    Column("priority_weight", Integer(), nullable=False),
    Column("pool", id_string(), nullable=False),
    Column("pool_slots", Integer(), nullable=False),
    Column("queue", String(250), nullable=False),
    Column("group_id", id_string(), nullable=True),
    Column("start_date", UtcDateTime(), nullable=True),
    Column("end_date", UtcDateTime(), nullable=True),
    Column("duration", Float(), nullable=True),
    Column("hostname", String(250), nullable=True),
    Column("pid", Integer(), nullable=True),
    Column("heartbeat_at", UtcDateTime(), nullable=True),
    Column("next_try_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_task_instances_run_pk_state", "run_pk", "state"),
    **TABLE_OPTIONS,
)

task_tries = Table(
    "task_tries",
    metadata,
    Column("run_pk", Integer(), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", id_string(), primary_key=True),
    Column("try_number", Integer(), primary_key=True, autoincrement=False),
    Column("state", String(32), nullable=False),
    Column("start_date", UtcDateTime(), nullable=True),
    Column("end_date", UtcDateTime(), nullable=True),
    Column("duration", Float(), nullable=True),
    Column("hostname", String(250), nullable=True),
    Column("pid", Integer(), nullable=True),
    Column("error", long_text(), nullable=True),
    Column("traceback", long_text(), nullable=True),
    Column("log_path", long_text(), nullable=True),
    Column("rendered", TaggedJsonText(), nullable=True),
    # The whole outcome as a remote worker recorded it (skips, dynamic dependencies, result keys),
    # so a scheduler that missed the worker's message can take it from here (migration 0005).
    Column("outcome", JsonText(), nullable=True),
    **TABLE_OPTIONS,
)
TRY_COLUMNS = tuple(c.name for c in task_tries.c)
"""A try row's columns, named once: walking a table's columns costs more than filling a row."""


task_results = Table(
    "task_results",
    metadata,
    Column("run_pk", Integer(), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", id_string(), primary_key=True),
    Column("key", id_string(), primary_key=True),
    Column("value", long_binary(), nullable=True),
    Column("serializer", String(32), nullable=False),
    # Where the value lives when it is not in ``value`` (an object-store URL, later).
    Column("reference", long_text(), nullable=True),
    Column("size", BigInteger(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    **TABLE_OPTIONS,
)

state_events = Table(
    "state_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("run_pk", Integer(), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    # NULL for events of the run itself.
    Column("task_id", id_string(), nullable=True),
    Column("old", String(32), nullable=True),
    Column("new", String(32), nullable=False),
    Column("reason", long_text(), nullable=False),
    Column("try_number", Integer(), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Index("ix_state_events_run_pk", "run_pk"),
    **TABLE_OPTIONS,
)

pools = Table(
    "pools",
    metadata,
    Column("name", id_string(), primary_key=True),
    Column("slots", Integer(), nullable=False),
    Column("description", long_text(), nullable=False),
    **TABLE_OPTIONS,
)

import_errors = Table(
    "import_errors",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("fileloc", long_text(), nullable=False),
    Column("line", Integer(), nullable=True),
    Column("error", long_text(), nullable=False),
    Column("traceback", long_text(), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    **TABLE_OPTIONS,
)

scheduler_jobs = Table(
    "scheduler_jobs",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("hostname", String(250), nullable=False),
    Column("pid", Integer(), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("heartbeat_at", UtcDateTime(), nullable=False),
    Column("end_date", UtcDateTime(), nullable=True),
    Column("state", String(32), nullable=False),
    Column("executor", String(32), nullable=True),  # a scheduler's (migration 0012); NULL before it
    Column("fault", long_text(), nullable=True),  # what keeps it from starting tries (migration 0013)
    Index("ix_scheduler_jobs_kind_state", "kind", "state"),
    **TABLE_OPTIONS,
)

# Connections and variables (migration 0004). Secret columns hold Fernet tokens when
# ``is_encrypted`` is true (the key is the ``fernet_key`` setting); see ``ductwork.store.crypto``.
connections = Table(
    "connections",
    metadata,
    Column("conn_id", id_string(), primary_key=True),
    Column("conn_type", String(64), nullable=False),
    Column("host", long_text(), nullable=True),
    Column("schema", long_text(), nullable=True),
    Column("login", long_text(), nullable=True),
    Column("password", long_text(), nullable=True),
    Column("port", Integer(), nullable=True),
    Column("extra", long_text(), nullable=True),
    Column("is_encrypted", Boolean(), nullable=False),
    Column("description", long_text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    **TABLE_OPTIONS,
)

variables = Table(
    "variables",
    metadata,
    Column("key", id_string(), primary_key=True),
    Column("value", long_text(), nullable=False),
    Column("is_encrypted", Boolean(), nullable=False),
    Column("description", long_text(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    **TABLE_OPTIONS,
)

# --- web access (migration 0003): users, API tokens and browser sessions ---------------------
# Secrets are never stored: passwords as argon2 hashes, tokens and session ids as SHA-256 digests
# (they are long random strings, so a fast digest is enough and lookups stay one indexed query).
users = Table(
    "users",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("username", id_string(), nullable=False),
    Column("password_hash", String(250), nullable=False),
    Column("role", String(32), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_login_at", UtcDateTime(), nullable=True),
    UniqueConstraint("username"),
    **TABLE_OPTIONS,
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("user_id", Integer(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("token_hash", String(64), nullable=False),
    # The first characters of the token, so a person can tell their tokens apart in a list.
    Column("prefix", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
    UniqueConstraint("token_hash"),
    Index("ix_api_tokens_user_id", "user_id"),
    **TABLE_OPTIONS,
)

web_sessions = Table(
    "web_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("user_id", Integer(), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # The synchronizer token every cookie-authenticated write must send back (form field or header).
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_web_sessions_user_id", "user_id"),
    **TABLE_OPTIONS,
)

# --- past one machine (migration 0005) --------------------------------------------------------
# Remote workers (``ductwork worker``, Kubernetes pods): one row per worker, refreshed by its
# heartbeat; a worker silent past ``worker_lost_after`` is shown lost and its tries are failed or
# retried by the scheduler.
workers = Table(
    "workers",
    metadata,
    Column("name", id_string(), primary_key=True),
    Column("hostname", String(250), nullable=False),
    Column("pid", Integer(), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("queues", JsonText(), nullable=False),
    Column("concurrency", Integer(), nullable=False),
    Column("slots_used", Integer(), nullable=False),
    # The tries it runs now, as "flow/run task #try" strings.
    Column("current", JsonText(), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("heartbeat_at", UtcDateTime(), nullable=False),
    Column("state", String(32), nullable=False),
    Column("version", String(64), nullable=False),
    Index("ix_workers_state", "state"),
    **TABLE_OPTIONS,
)

# Content-addressed bundles of the flows folder, fetched and cached by remote workers: the data
# here, or at ``location`` (an fsspec URL) when the ``bundle_url`` setting is used.
code_bundles = Table(
    "code_bundles",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("size", BigInteger(), nullable=False),
    Column("files", Integer(), nullable=False),
    Column("data", long_binary(), nullable=True),
    Column("location", long_text(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    **TABLE_OPTIONS,
)

# --- the audit log (migration 0006): who changed what, when, from where ----------------------
# Written for every change made through the CLI, the API or the UI; details never hold a secret
# (``ductwork.services.audit`` redacts them before they get here). Kept under its own retention.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", String(250), nullable=False),
    # cli, api (a token), ui (a session), scheduler
    Column("via", String(32), nullable=False),
    # The client's address for the API and UI, the host name for the CLI.
    Column("origin", String(250), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", long_text(), nullable=False),
    Column("details", JsonText(), nullable=False),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_actor_at", "actor", "at"),
    Index("ix_audit_log_action_at", "action", "at"),
    **TABLE_OPTIONS,
)

# --- declarative pipelines (migration 0007): stored versions, the active one ----------------------
# ``ductwork pipelines put`` stores a version (the definition as given, validated first);
# ``activate`` makes one version the one the scheduler runs (written to a file it parses) and
# ``deactivate`` pauses it. ``run_requested_at``: an on-demand activation waiting for its run.
pipeline_versions = Table(
    "pipeline_versions",
    metadata,
    Column("name", String(250), primary_key=True),
    Column("version", Integer(), primary_key=True),
    Column("format", String(32), nullable=False),
    Column("definition", long_text(), nullable=False),
    Column("digest", String(64), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("created_by", String(250), nullable=False),
    Column("is_active", Boolean(), nullable=False),
    Column("activated_at", UtcDateTime(), nullable=True),
    Column("deactivated_at", UtcDateTime(), nullable=True),
    Column("run_requested_at", UtcDateTime(), nullable=True),
    Index("ix_pipeline_versions_active", "is_active", "name"),
    **TABLE_OPTIONS,
)

# --- data-aware and event-driven runs (migration 0008) ---------------------------------------
# Assets have integer ids: a URI may be up to 700 characters, too long for the composite keys
# below on MariaDB (3072 bytes per index).
assets = Table(
    "assets",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("uri", String(700), nullable=False),
    Column("extra", JsonText(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    UniqueConstraint("uri"),
    **TABLE_OPTIONS,
)

# Who mentions an asset, as last parsed: "schedule" (the flow is scheduled on it; task_id ""),
# "outlet" and "inlet" (a task writes or reads it).
asset_refs = Table(
    "asset_refs",
    metadata,
    Column("flow_id", id_string(), primary_key=True),
    Column("asset_id", Integer(), ForeignKey("assets.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("task_id", id_string(), primary_key=True),
    Index("ix_asset_refs_asset_id", "asset_id"),
    **TABLE_OPTIONS,
)

asset_events = Table(
    "asset_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("asset_id", Integer(), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    # The run and task whose success updated the asset (NULL for updates posted from outside).
    Column("source_flow_id", id_string(), nullable=True),
    Column("source_run_id", id_string(), nullable=True),
    Column("source_task_id", id_string(), nullable=True),
    Column("extra", TaggedJsonText(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_asset_events_asset_id_id", "asset_id", "id"),
    **TABLE_OPTIONS,
)

# Updates a flow scheduled on assets has not consumed yet: written in the same transaction as
# the event, deleted in the same transaction as the run they start.
asset_queue = Table(
    "asset_queue",
    metadata,
    Column("flow_id", id_string(), primary_key=True),
    Column("event_id", BigInteger(), ForeignKey("asset_events.id", ondelete="CASCADE"), primary_key=True),
    Column("asset_id", Integer(), ForeignKey("assets.id", ondelete="CASCADE"), nullable=False),
    **TABLE_OPTIONS,
)

asset_run_events = Table(
    "asset_run_events",
    metadata,
    Column("run_pk", Integer(), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("event_id", BigInteger(), ForeignKey("asset_events.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_asset_run_events_event_id", "event_id"),
    **TABLE_OPTIONS,
)

# One row per message handled, whatever became of it: the unique key is the de-duplication
# (ADR 0014). It commits with the run (or the dead letter) the message made, and is deleted by
# retention once no broker can deliver the message again (services.cleanup).
message_receipts = Table(
    "message_receipts",
    metadata,
    Column("flow_id", id_string(), primary_key=True),
    Column("source", String(200), primary_key=True),
    Column("message_id", String(200), primary_key=True),
    Column("run_pk", Integer(), nullable=True),
    Column("dead_letter_id", Integer(), nullable=True),
    Column("received_at", UtcDateTime(), nullable=False),
    Index("ix_message_receipts_received_at", "received_at"),  # retention (services.cleanup)
    **TABLE_OPTIONS,
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("flow_id", id_string(), nullable=False),
    Column("source", String(200), nullable=False),
    Column("message_id", String(200), nullable=False),
    Column("payload", long_text(), nullable=False),
    Column("reason", long_text(), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Index("ix_dead_letters_flow_id", "flow_id"),
    Index("ix_dead_letters_received_at", "received_at"),
    **TABLE_OPTIONS,
)

# Incremental recomputation: each try of a task with cache="content", its fingerprint and what
# was decided (ran, or reused the results of an earlier run), for reuse and for ``ductwork why``.
task_fingerprints = Table(
    "task_fingerprints",
    metadata,
    Column("run_pk", Integer(), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", id_string(), primary_key=True),
    Column("try_number", Integer(), primary_key=True, autoincrement=False),
    Column("flow_id", id_string(), nullable=False),
    Column("cache_key", String(32), nullable=False),
    Column("fingerprint", JsonText(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("matched_run_id", id_string(), nullable=True),
    Column("changes", JsonText(), nullable=False),
    Column("result_keys", JsonText(), nullable=False),
    Column("succeeded", Boolean(), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_task_fingerprints_lookup", "flow_id", "task_id", "cache_key"),
    **TABLE_OPTIONS,
)

DEFAULT_POOL_SLOTS = 128

IN_PROCESS_OWNER = -1
"""``runs.owner`` of a run that the command which created it executes in its own process
(``ductwork run``, ``ductwork build``): no scheduler takes it, however it ends (a killed one is
recorded by the next such command, from its journal)."""
