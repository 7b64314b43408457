"""What remote workers write: the start and end of their tries, their heartbeats, their row.

A worker on another host shares nothing with the scheduler but the database and the broker,
so it records its own tries here (the local pool journals them instead, ADR 0006). Every write
is a compare-and-set on the task instance's state and try number:

- ``start_try``: queued -> running. The broker delivers at least once; this step is what makes
  a try start at most once. A redelivered message finds the try running or ended and is dropped.
- ``end_try``: running -> the outcome's state, with the whole outcome kept on the try row, so a
  scheduler that missed the worker's message (it died, the broker restarted) reads it here.
  A scheduler that declares a try lost writes through the same guard, so the worker's end and
  the scheduler's "lost" cannot both apply.

These functions write no state events: the scheduler records the transitions it applies, as
for local tries, so the history of a try is written once.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.core.states import TaskState
from ductwork.store.repo import _nodes
from ductwork.store.repo._util import chunks
from ductwork.store.tables import code_bundles, task_instances, task_tries, workers
from ductwork.store.types import utcnow
from ductwork.store.upsert import upsert

if TYPE_CHECKING:
    from ductwork.core.events import TryOutcome

ti = task_instances
S = TaskState
_TRY_KEYS = ("run_pk", "task_id", "try_number")
_NOT_A_TRY = (S.UP_FOR_RESCHEDULE, S.NONE)

RUNNING = "running"
STOPPED = "stopped"
LOST = "lost"


# --- tries -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Found:
    """A task instance as a worker found it when its step did not apply."""

    state: TaskState | None
    """None: the run has no such task (any more)."""
    try_number: int
    hostname: str | None


def start_try(
    conn: Connection,
    run_pk: int,
    task_id: str,
    try_number: int,
    *,
    worker: str,
    pid: int,
    at: dt.datetime,
    log_path: str | None,
) -> Found | None:
    """queued -> running for this try number; ``None`` when it applied, else what was found
    (the try is not this worker's to run)."""
    params = {"k_pk": run_pk, "k_task": task_id, "k_try": try_number, "v_at": at, "v_host": worker, "v_pid": pid}
    if conn.dialect.name == "postgresql":  # the step and its try row in one statement
        claimed = conn.execute(_pg_start_statement(), {**params, "v_log": log_path}).first()
        return None if claimed is not None else _found(conn, run_pk, task_id)
    applied = conn.execute(_start_statement(), params).rowcount
    if applied != 1:
        return _found(conn, run_pk, task_id)
    row = _try_row(run_pk, task_id, try_number, S.RUNNING, start_date=at, hostname=worker, pid=pid, log_path=log_path)
    upsert(conn, task_tries, [row], keys=_TRY_KEYS, update=("state", "start_date", "hostname", "pid", "log_path"))
    return None


def end_try(
    conn: Connection,
    run_pk: int,
    task_id: str,
    try_number: int,
    outcome: TryOutcome,
    encoded: dict[str, Any],
    *,
    worker: str | None = None,
    pid: int | None = None,
    log_path: str | None = None,
    expected: Sequence[TaskState] = (S.RUNNING,),
) -> Found | None:
    """The try's end, if the instance is still in an ``expected`` state at this try number;
    ``None`` when it applied, else what was found. ``encoded`` is the outcome as JSON data."""
    state = outcome.state
    at = outcome.ended_at
    values = {
        "k_pk": run_pk,
        "k_task": task_id,
        "k_try": try_number,
        "v_state": state.value,
        "v_try": try_number - 1 if state in _NOT_A_TRY else try_number,
        "v_start": outcome.started_at,
        "v_end": at,
        "v_duration": outcome.duration,
        "v_next": outcome.next_try_at,
    }
    expected_values = tuple(s.value for s in expected)
    update = ["state", "end_date", "duration", "error", "traceback", "rendered", "outcome"]
    if worker is not None:
        update += ["hostname", "pid"]
    if log_path is not None:
        update.append("log_path")
    if outcome.started_at is not None:
        update.append("start_date")
    if conn.dialect.name == "postgresql":  # the step and its try row in one statement
        ended = conn.execute(
            _pg_end_statement(expected_values, tuple(update)),
            {
                **values,
                "v_error": outcome.error,
                "v_traceback": outcome.traceback,
                "v_rendered": outcome.rendered or None,
                "v_outcome": encoded,
                "v_host": worker,
                "v_pid": pid,
                "v_log": log_path,
            },
        ).first()
        if ended is None:
            return _found(conn, run_pk, task_id)
        if outcome.new_nodes:
            _nodes.grow(conn, run_pk, outcome.new_nodes, at)
        return None
    applied = conn.execute(_end_statement(expected_values), values).rowcount
    if applied != 1:
        return _found(conn, run_pk, task_id)
    if outcome.new_nodes:
        _nodes.grow(conn, run_pk, outcome.new_nodes, at)
    row = _try_row(
        run_pk,
        task_id,
        try_number,
        state,
        start_date=outcome.started_at,
        end_date=at,
        duration=outcome.duration,
        error=outcome.error,
        traceback=outcome.traceback,
        rendered=outcome.rendered or None,
        outcome=encoded,
        hostname=worker,
        pid=pid,
        log_path=log_path,
    )
    upsert(conn, task_tries, [row], keys=_TRY_KEYS, update=update)
    return None


def _key_clauses() -> tuple[Any, ...]:
    return (
        ti.c.run_pk == sa.bindparam("k_pk"),
        ti.c.task_id == sa.bindparam("k_task"),
        ti.c.try_number == sa.bindparam("k_try"),
    )


@functools.cache
def _start_statement() -> Any:
    """Built once: a worker runs it for every try, and building a statement costs more than
    running it."""
    at = sa.bindparam("v_at", type_=ti.c.start_date.type)
    return (
        sa.update(ti)
        .where(*_key_clauses(), ti.c.state == S.QUEUED.value)
        .values(
            state=S.RUNNING.value,
            start_date=at,
            end_date=None,
            duration=None,
            hostname=sa.bindparam("v_host", type_=ti.c.hostname.type),
            pid=sa.bindparam("v_pid", type_=ti.c.pid.type),
            heartbeat_at=at,
            next_try_at=None,
            updated_at=at,
        )
    )


@functools.cache
def _end_statement(expected: tuple[str, ...]) -> Any:
    end = sa.bindparam("v_end", type_=ti.c.end_date.type)
    return (
        sa.update(ti)
        .where(*_key_clauses(), sa.or_(*(ti.c.state == value for value in expected)))  # no expanding IN
        .values(
            state=sa.bindparam("v_state", type_=ti.c.state.type),
            try_number=sa.bindparam("v_try", type_=ti.c.try_number.type),
            start_date=sa.func.coalesce(ti.c.start_date, sa.bindparam("v_start", type_=ti.c.start_date.type)),
            end_date=end,
            duration=sa.bindparam("v_duration", type_=ti.c.duration.type),
            next_try_at=sa.bindparam("v_next", type_=ti.c.next_try_at.type),
            updated_at=end,
        )
    )


_TRY_VALUES = {
    "start_date": "v_start",
    "end_date": "v_end",
    "duration": "v_duration",
    "error": "v_error",
    "traceback": "v_traceback",
    "rendered": "v_rendered",
    "outcome": "v_outcome",
    "hostname": "v_host",
    "pid": "v_pid",
    "log_path": "v_log",
}
"""The try row's columns, each from the bound value of that name (PostgreSQL's fused steps)."""


def _pg_with_try_row(step: Any, name: str, values: Mapping[str, Any], update: tuple[str, ...]) -> Any:
    """``step`` (an UPDATE of the task instance) and the upsert of its try row as one statement:
    ``WITH name AS (UPDATE ... RETURNING key) INSERT INTO task_tries SELECT ... FROM name ON
    CONFLICT ... RETURNING``. A row comes back only when the step applied. One round trip
    where a worker's claim or end took two, for every remote try."""
    from sqlalchemy.dialects import postgresql

    applied = step.returning(ti.c.run_pk, ti.c.task_id).cte(name)
    tt = task_tries
    columns = ["run_pk", "task_id", "try_number", *values]
    chosen = sa.select(
        applied.c.run_pk,
        applied.c.task_id,
        sa.bindparam("k_try", type_=tt.c.try_number.type),  # the instance's may have gone back one
        *(
            sa.bindparam(param, type_=tt.c[column].type) if isinstance(param, str) else param
            for column, param in values.items()
        ),
    )
    insert = postgresql.insert(tt).from_select(columns, chosen)
    return insert.on_conflict_do_update(
        index_elements=list(_TRY_KEYS), set_={c: insert.excluded[c] for c in update}
    ).returning(tt.c.try_number)


@functools.cache
def _pg_start_statement() -> Any:
    at = sa.bindparam("v_at", type_=task_tries.c.start_date.type)
    values: dict[str, Any] = {
        "state": sa.literal(S.RUNNING.value, type_=task_tries.c.state.type),
        "start_date": at,
        "hostname": "v_host",
        "pid": "v_pid",
        "log_path": "v_log",
    }
    return _pg_with_try_row(
        _start_statement(), "claimed", values, ("state", "start_date", "hostname", "pid", "log_path")
    )


@functools.cache
def _pg_end_statement(expected: tuple[str, ...], update: tuple[str, ...]) -> Any:
    values: dict[str, Any] = {"state": "v_state", **_TRY_VALUES}
    return _pg_with_try_row(_end_statement(expected), "ended", values, update)


@dataclass(frozen=True, slots=True)
class TryView:
    """A try as the database has it, for a scheduler checking the tries it handed out."""

    state: TaskState
    try_number: int
    hostname: str | None
    heartbeat_at: dt.datetime | None
    outcome: dict[str, Any] | None
    """The outcome the worker recorded for this try number, if it ended."""


def view_tries(conn: Connection, keys: Iterable[tuple[int, str, int]]) -> dict[tuple[int, str, int], TryView]:
    """The instances of the given (run pk, task id, try number) keys, with the recorded outcome of
    that try number when there is one."""
    wanted = list(keys)
    by_run: dict[int, dict[str, int]] = {}
    for pk, task_id, number in wanted:
        by_run.setdefault(pk, {})[task_id] = number
    out: dict[tuple[int, str, int], TryView] = {}
    tt = task_tries
    for pk, tasks in by_run.items():
        for part in chunks(list(tasks)):
            rows = conn.execute(
                sa.select(ti.c.task_id, ti.c.state, ti.c.try_number, ti.c.hostname, ti.c.heartbeat_at).where(
                    ti.c.run_pk == pk, ti.c.task_id.in_(part)
                )
            ).all()
            outcomes = {
                (r.task_id, r.try_number): r.outcome
                for r in conn.execute(
                    sa.select(tt.c.task_id, tt.c.try_number, tt.c.outcome).where(
                        tt.c.run_pk == pk, tt.c.task_id.in_(part), tt.c.outcome.is_not(None)
                    )
                )
            }
            for r in rows:
                number = tasks[r.task_id]
                out[(pk, r.task_id, number)] = TryView(
                    TaskState(r.state), r.try_number, r.hostname, r.heartbeat_at, outcomes.get((r.task_id, number))
                )
    return out


def heartbeat_tries(conn: Connection, keys: Iterable[tuple[int, str, int]], at: dt.datetime) -> None:
    """Note that these running tries are alive."""
    params = [{"b_pk": pk, "b_task": task_id, "b_try": n, "b_at": at} for pk, task_id, n in keys]
    if not params:
        return
    conn.execute(
        sa.update(ti)
        .where(
            ti.c.run_pk == sa.bindparam("b_pk"),
            ti.c.task_id == sa.bindparam("b_task"),
            ti.c.try_number == sa.bindparam("b_try"),
            ti.c.state == S.RUNNING.value,
        )
        .values(heartbeat_at=sa.bindparam("b_at", type_=ti.c.heartbeat_at.type)),
        params,
    )


def _found(conn: Connection, run_pk: int, task_id: str) -> Found:
    row = conn.execute(
        sa.select(ti.c.state, ti.c.try_number, ti.c.hostname).where(ti.c.run_pk == run_pk, ti.c.task_id == task_id)
    ).first()
    if row is None:
        return Found(None, 0, None)
    return Found(TaskState(row.state), row.try_number, row.hostname)


def _try_row(run_pk: int, task_id: str, try_number: int, state: TaskState, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(c.name for c in task_tries.c)
    row.update(run_pk=run_pk, task_id=task_id, try_number=try_number, state=state.value, **values)
    return row


# --- workers ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class WorkerRecord:
    name: str
    hostname: str
    pid: int
    kind: str
    queues: tuple[str, ...]
    concurrency: int
    slots_used: int
    current: tuple[str, ...]
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    state: str
    version: str

    def status(self, lost_after: float, now: dt.datetime | None = None) -> str:
        """``running``, ``stopped``, or ``lost`` (silent for longer than ``lost_after`` seconds)."""
        now = now or utcnow()
        if self.state == RUNNING and (now - self.heartbeat_at).total_seconds() > lost_after:
            return LOST
        return self.state


def register_worker(
    conn: Connection,
    name: str,
    *,
    hostname: str,
    pid: int,
    kind: str,
    queues: Sequence[str],
    concurrency: int,
    version: str,
    now: dt.datetime | None = None,
) -> None:
    """Record a worker that starts (replacing an earlier worker of the same name)."""
    now = now or utcnow()
    row = {
        "name": name,
        "hostname": hostname,
        "pid": pid,
        "kind": kind,
        "queues": list(queues),
        "concurrency": concurrency,
        "slots_used": 0,
        "current": [],
        "started_at": now,
        "heartbeat_at": now,
        "state": RUNNING,
        "version": version,
    }
    upsert(conn, workers, [row], keys=("name",), update=tuple(k for k in row if k != "name"))


def worker_heartbeat(
    conn: Connection,
    name: str,
    *,
    tries: Mapping[tuple[int, str, int], str] | None = None,
    slots_used: int = 0,
    now: dt.datetime | None = None,
) -> bool:
    """Refresh a worker's row and the heartbeats of the tries it runs; ``False`` when the row is
    gone (the worker should register again).

    ``tries`` are the tries of the messages the worker holds, labelled by (run pk, task id, try
    number); the row's current tries are those of them that are running, since a message of
    several tries runs them in turn and the ones still waiting in it are not current."""
    now = now or utcnow()
    tries = tries or {}
    heartbeat_tries(conn, tries, now)
    views = view_tries(conn, tries) if tries else {}
    current = [
        label
        for key, label in tries.items()
        if (view := views.get(key)) is not None and view.state == S.RUNNING and view.try_number == key[2]
    ]
    applied = conn.execute(
        sa.update(workers)
        .where(workers.c.name == name)
        .values(heartbeat_at=now, slots_used=slots_used, current=current, state=RUNNING)
    ).rowcount
    return applied == 1


def stop_worker(conn: Connection, name: str, *, now: dt.datetime | None = None) -> None:
    conn.execute(
        sa.update(workers)
        .where(workers.c.name == name)
        .values(state=STOPPED, heartbeat_at=now or utcnow(), slots_used=0, current=[])
    )


def mark_lost(conn: Connection, names: Iterable[str]) -> None:
    names = list(names)
    if names:
        conn.execute(sa.update(workers).where(workers.c.name.in_(names), workers.c.state == RUNNING).values(state=LOST))


def list_workers(conn: Connection, *, include_stopped: bool = True) -> list[WorkerRecord]:
    stmt = sa.select(workers).order_by(workers.c.name)
    if not include_stopped:
        stmt = stmt.where(workers.c.state != STOPPED)
    return [
        WorkerRecord(
            r.name,
            r.hostname,
            r.pid,
            r.kind,
            tuple(r.queues or ()),
            r.concurrency,
            r.slots_used,
            tuple(r.current or ()),
            r.started_at,
            r.heartbeat_at,
            r.state,
            r.version,
        )
        for r in conn.execute(stmt)
    ]


def forget_stopped(conn: Connection, older_than: dt.datetime) -> int:
    """Delete rows of workers that stopped (or were lost) before ``older_than``."""
    return conn.execute(
        sa.delete(workers).where(workers.c.state != RUNNING, workers.c.heartbeat_at < older_than)
    ).rowcount


# --- code bundles ----------------------------------------------------------------------------
def has_bundle(conn: Connection, digest: str) -> bool:
    return conn.execute(sa.select(code_bundles.c.hash).where(code_bundles.c.hash == digest)).first() is not None


def put_bundle(
    conn: Connection,
    digest: str,
    *,
    size: int,
    files: int,
    data: bytes | None = None,
    location: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    row = {
        "hash": digest,
        "size": size,
        "files": files,
        "data": data,
        "location": location,
        "created_at": now or utcnow(),
    }
    upsert(conn, code_bundles, [row], keys=("hash",), update=("size", "files", "data", "location"))


def get_bundle(conn: Connection, digest: str) -> tuple[bytes | None, str | None] | None:
    """(data, location) of a bundle, or None when no bundle has that hash."""
    row = conn.execute(
        sa.select(code_bundles.c.data, code_bundles.c.location).where(code_bundles.c.hash == digest)
    ).first()
    return None if row is None else (row.data, row.location)
