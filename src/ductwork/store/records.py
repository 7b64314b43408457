"""What repositories return: frozen plain records, never rows, sessions or ORM objects.

Records are safe to keep after the transaction ends, to pass between threads, and to render in
the CLI and the API. Times are aware UTC datetimes; states are the ``core.states`` enums.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ductwork.core.context import run_key
from ductwork.core.graph import FlowGraph
from ductwork.core.states import RunState, TaskState

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FlowRecord:
    flow_id: str
    fileloc: str | None
    version_hash: str
    schedule: str
    timezone: str
    is_paused: bool
    is_active: bool
    owner: str
    tags: tuple[str, ...]
    description: str
    style: str
    max_active_runs: int
    next_logical_date: dt.datetime | None
    next_interval_start: dt.datetime | None
    next_interval_end: dt.datetime | None
    last_parsed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class FlowVersionRecord:
    flow_id: str
    version_hash: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class RunRecord:
    pk: int
    flow_id: str
    run_id: str
    run_type: str
    state: RunState
    logical_date: dt.datetime
    data_interval_start: dt.datetime
    data_interval_end: dt.datetime
    params: Mapping[str, Any]
    conf: Mapping[str, Any]
    version_hash: str
    queued_at: dt.datetime | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    note: str | None
    revision: int = 0
    graph_pending: bool = False
    owner: int | None = None
    """The scheduler job driving the run, ``IN_PROCESS_OWNER`` for a command's own, or None."""
    triggered_by: Mapping[str, Any] | None = None
    code: Mapping[str, Any] | None = None
    """The code the run was created from (``engine.code_info.flow_code``), when known."""

    @property
    def key(self) -> str:
        """The engine's key for this run (``flow_id/run_id``)."""
        return run_key(self.flow_id, self.run_id)


@dataclass(frozen=True, slots=True)
class TaskInstanceRecord:
    run_pk: int
    task_id: str
    state: TaskState
    try_number: int
    max_tries: int
    upstream: tuple[str, ...]
    operator: str
    priority_weight: int
    pool: str
    pool_slots: int
    queue: str
    group_id: str | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    duration: float | None
    hostname: str | None
    pid: int | None
    heartbeat_at: dt.datetime | None
    next_try_at: dt.datetime | None
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class TryRecord:
    run_pk: int
    task_id: str
    try_number: int
    state: TaskState
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    duration: float | None
    hostname: str | None
    pid: int | None
    error: str | None
    traceback: str | None
    log_path: str | None
    rendered: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class RunGraph:
    """A run's recorded graph and where each task stands: what a scheduler needs to resume it."""

    run: RunRecord
    graph: FlowGraph
    states: Mapping[str, TaskState]
    tries: Mapping[str, int]
    max_tries: Mapping[str, int] = field(default_factory=dict)
    next_try_at: Mapping[str, dt.datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredResult:
    """A serialized result as stored: the bytes (or a reference to where they live) and the
    name of the serializer that can read them."""

    value: bytes | None
    serializer: str
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class ResultRecord:
    run_pk: int
    task_id: str
    key: str
    serializer: str
    size: int
    reference: str | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class StateEventRecord:
    id: int
    run_pk: int
    task_id: str | None
    old: str | None
    new: str
    reason: str
    try_number: int
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class PoolRecord:
    name: str
    slots: int
    description: str


@dataclass(frozen=True, slots=True)
class PoolUsage:
    """Slots taken in a pool by task instances that are queued or running, across all runs."""

    name: str
    slots: int
    queued_slots: int
    running_slots: int

    @property
    def open_slots(self) -> int:
        return self.slots - self.queued_slots - self.running_slots


@dataclass(frozen=True, slots=True)
class ImportErrorRecord:
    id: int
    fileloc: str
    line: int | None
    error: str
    traceback: str
    at: dt.datetime


@dataclass(frozen=True, slots=True)
class NewImportError:
    """An import error to record (see ``repo.import_errors.replace_import_errors``)."""

    error: str
    line: int | None = None
    traceback: str = ""


@dataclass(frozen=True, slots=True)
class SchedulerJobRecord:
    id: int
    kind: str
    hostname: str
    pid: int
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    end_date: dt.datetime | None
    state: str
    fault: str | None = None
    """What keeps this scheduler from starting any try (an unwritable log folder), if anything."""


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing and the total number of matching items."""

    items: tuple[T, ...]
    total: int
    limit: int
    offset: int
