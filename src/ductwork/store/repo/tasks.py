"""Task instances and their tries: reading them, the worker's own writes, clear and mark.

Two kinds of writer touch these rows. The scheduler writes a whole step through
``ductwork.store.sink.SqlEventSink``. A worker that must record its own outcome durably (so a
scheduler restart does not lose it) uses ``try_started`` and ``try_finished``: one short
transaction each, guarded by the state and try number it expects, so a stale worker whose try
was cleared or superseded changes nothing and learns so from the return value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import Connection, Row

from ductwork.core.graph import NodeSpec
from ductwork.core.states import ACTIVE, MANUAL_TARGETS, RunState, TaskState
from ductwork.errors import InvalidTransitionError, NotFoundError
from ductwork.store.records import TaskInstanceRecord, TryRecord
from ductwork.store.repo import _nodes
from ductwork.store.repo._util import chunks, closure
from ductwork.store.repo.events import NewStateEvent, add_state_events
from ductwork.store.repo.runs import bump_revision, lock_runs, set_run_state
from ductwork.store.tables import TRY_COLUMNS, task_instances, task_results, task_tries
from ductwork.store.types import utcnow
from ductwork.store.upsert import upsert

if TYPE_CHECKING:  # the store records outcomes; it does not need the engine's code to do so
    from ductwork.core.events import TryOutcome

ti = task_instances
S = TaskState

_TI_COLUMNS = [c for c in ti.c if c.name not in ("node", "ordinal")]
_TRY_START_COLUMNS = ("start_date", "hostname", "pid")
_TRY_END_COLUMNS = ("state", "end_date", "duration", "error", "traceback", "rendered")

# Tries that do not use up a try: the supervisor counts them back (rescheduled sensors, tasks
# that yielded dynamic dependencies), and so does the store.
_NOT_A_TRY = (S.UP_FOR_RESCHEDULE, S.NONE)


def _ti_record(row: Row[Any]) -> TaskInstanceRecord:
    m = row._mapping
    return TaskInstanceRecord(
        run_pk=m["run_pk"],
        task_id=m["task_id"],
        state=TaskState(m["state"]),
        try_number=m["try_number"],
        max_tries=m["max_tries"],
        upstream=tuple(m["upstream"]),
        operator=m["operator"],
        priority_weight=m["priority_weight"],
        pool=m["pool"],
        pool_slots=m["pool_slots"],
        queue=m["queue"],
        group_id=m["group_id"],
        start_date=m["start_date"],
        end_date=m["end_date"],
        duration=m["duration"],
        hostname=m["hostname"],
        pid=m["pid"],
        heartbeat_at=m["heartbeat_at"],
        next_try_at=m["next_try_at"],
        updated_at=m["updated_at"],
    )


def _try_record(row: Row[Any]) -> TryRecord:
    m = row._mapping
    return TryRecord(
        run_pk=m["run_pk"],
        task_id=m["task_id"],
        try_number=m["try_number"],
        state=TaskState(m["state"]),
        start_date=m["start_date"],
        end_date=m["end_date"],
        duration=m["duration"],
        hostname=m["hostname"],
        pid=m["pid"],
        error=m["error"],
        traceback=m["traceback"],
        log_path=m["log_path"],
        rendered=m["rendered"],
    )


# --- reading ---------------------------------------------------------------------------------
def list_task_instances(
    conn: Connection,
    run_pk: int,
    *,
    states: Iterable[TaskState] | None = None,
    task_ids: Iterable[str] | None = None,
) -> list[TaskInstanceRecord]:
    """A run's task instances in graph order, optionally only some states or ids."""
    stmt = sa.select(*_TI_COLUMNS).where(ti.c.run_pk == run_pk).order_by(ti.c.ordinal)
    if states is not None:
        stmt = stmt.where(ti.c.state.in_([TaskState(s).value for s in states]))
    if task_ids is None:
        return [_ti_record(row) for row in conn.execute(stmt)]
    ids = list(task_ids)
    found: list[TaskInstanceRecord] = []
    for part in chunks(ids):
        found += [_ti_record(row) for row in conn.execute(stmt.where(ti.c.task_id.in_(part)))]
    order = {task_id: i for i, task_id in enumerate(ids)}
    return sorted(found, key=lambda r: order[r.task_id])


def get_task_instance(conn: Connection, run_pk: int, task_id: str) -> TaskInstanceRecord | None:
    row = conn.execute(sa.select(*_TI_COLUMNS).where(ti.c.run_pk == run_pk, ti.c.task_id == task_id)).first()
    return _ti_record(row) if row is not None else None


def task_node(conn: Connection, run_pk: int, task_id: str) -> NodeSpec | None:
    """The node of one task of a run, as the run recorded it (a class task's parameters)."""
    where = (ti.c.run_pk == run_pk, ti.c.task_id == task_id)
    row = conn.execute(sa.select(ti.c.node, ti.c.upstream).where(*where)).first()
    return _nodes.node_from_row(task_id, row.node, row.upstream) if row is not None else None


def task_states(conn: Connection, run_pk: int) -> dict[str, TaskState]:
    """Task id to state for a run (a cheap query: two columns)."""
    rows = conn.execute(sa.select(ti.c.task_id, ti.c.state).where(ti.c.run_pk == run_pk))
    return {r.task_id: TaskState(r.state) for r in rows}


def list_tries(conn: Connection, run_pk: int, task_id: str | None = None) -> list[TryRecord]:
    """Tries of a run (or of one task), by task and try number."""
    stmt = sa.select(task_tries).where(task_tries.c.run_pk == run_pk)
    if task_id is not None:
        stmt = stmt.where(task_tries.c.task_id == task_id)
    stmt = stmt.order_by(task_tries.c.task_id, task_tries.c.try_number)
    return [_try_record(row) for row in conn.execute(stmt)]


def map_index_labels(conn: Connection, run_pk: int) -> dict[str, str]:
    """The labels (``map_index_template``) of a run's mapped instances, from each one's latest
    try that has one: instance id -> label."""
    stmt = (
        sa.select(task_tries.c.task_id, task_tries.c.rendered)
        .where(task_tries.c.run_pk == run_pk, task_tries.c.task_id.like("%]"), task_tries.c.rendered.is_not(None))
        .order_by(task_tries.c.task_id, task_tries.c.try_number)
    )
    labels: dict[str, str] = {}
    for row in conn.execute(stmt):
        label = row.rendered.get("rendered_map_index") if isinstance(row.rendered, dict) else None
        if label:
            labels[row.task_id] = str(label)
    return labels


# --- the worker's own writes -----------------------------------------------------------------
def try_started(
    conn: Connection,
    run_pk: int,
    task_id: str,
    try_number: int,
    *,
    hostname: str | None = None,
    pid: int | None = None,
    at: dt.datetime | None = None,
    log_path: str | None = None,
    expected: Iterable[TaskState] = (S.QUEUED,),
) -> bool:
    """Record that try ``try_number`` began: the task instance becomes running and a try row is
    written. Applies only while the instance is in an ``expected`` state with this try number;
    returns whether it applied."""
    at = at or utcnow()
    old = _guard(conn, run_pk, task_id, try_number, expected)
    if old is None:
        return False
    conn.execute(
        sa.update(ti)
        .where(ti.c.run_pk == run_pk, ti.c.task_id == task_id)
        .values(
            state=S.RUNNING.value,
            start_date=at,
            end_date=None,
            duration=None,
            hostname=hostname,
            pid=pid,
            heartbeat_at=at,
            next_try_at=None,
            updated_at=at,
        )
    )
    row = _try_row(run_pk, task_id, try_number, S.RUNNING, start_date=at, hostname=hostname, pid=pid)
    row["log_path"] = log_path
    upsert(conn, task_tries, [row], keys=_TRY_KEYS, update=(*_TRY_START_COLUMNS, "log_path"))
    add_state_events(conn, [NewStateEvent(run_pk, task_id, old.value, S.RUNNING.value, "started", try_number, at)])
    return True


def try_finished(
    conn: Connection,
    run_pk: int,
    task_id: str,
    try_number: int,
    outcome: TryOutcome,
    *,
    hostname: str | None = None,
    pid: int | None = None,
    log_path: str | None = None,
    expected: Iterable[TaskState] = (S.RUNNING, S.QUEUED),
) -> bool:
    """Record how try ``try_number`` ended: the try row, the task instance's state, end date and
    next try time, and any dynamic dependencies the try yielded. Guarded like ``try_started``;
    returns whether it applied.

    The try number kept on the instance follows the supervisor: a reschedule or a wait for
    dynamic dependencies does not use up a try.
    """
    old = _guard(conn, run_pk, task_id, try_number, expected)
    if old is None:
        return False
    state = outcome.state
    at = outcome.ended_at
    if outcome.new_nodes:
        _nodes.grow(conn, run_pk, outcome.new_nodes, at)
    conn.execute(
        sa.update(ti)
        .where(ti.c.run_pk == run_pk, ti.c.task_id == task_id)
        .values(
            state=state.value,
            try_number=try_number - 1 if state in _NOT_A_TRY else try_number,
            start_date=sa.func.coalesce(ti.c.start_date, outcome.started_at),
            end_date=at,
            duration=outcome.duration,
            next_try_at=outcome.next_try_at,
            updated_at=at,
        )
    )
    row = _try_row(
        run_pk,
        task_id,
        try_number,
        state,
        start_date=outcome.started_at,
        hostname=hostname,
        pid=pid,
        end_date=at,
        duration=outcome.duration,
        error=outcome.error,
        traceback=outcome.traceback,
        rendered=outcome.rendered or None,
    )
    row["log_path"] = log_path
    update = _TRY_END_COLUMNS if log_path is None else (*_TRY_END_COLUMNS, "log_path")
    upsert(conn, task_tries, [row], keys=_TRY_KEYS, update=update)
    event = NewStateEvent(run_pk, task_id, old.value, state.value, outcome.error or "", try_number, at)
    add_state_events(conn, [event])
    return True


def heartbeat(conn: Connection, run_pk: int, task_id: str, try_number: int, *, at: dt.datetime | None = None) -> bool:
    """Note that the running try is alive; ``False`` when the instance is no longer running that try."""
    result = conn.execute(
        sa.update(ti)
        .where(
            ti.c.run_pk == run_pk,
            ti.c.task_id == task_id,
            ti.c.try_number == try_number,
            ti.c.state == S.RUNNING.value,
        )
        .values(heartbeat_at=at or utcnow())
    )
    return result.rowcount == 1


_TRY_KEYS = ("run_pk", "task_id", "try_number")


def _try_row(run_pk: int, task_id: str, try_number: int, state: TaskState, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(TRY_COLUMNS)
    row.update(run_pk=run_pk, task_id=task_id, try_number=try_number, state=state.value, **values)
    return row


def _guard(
    conn: Connection, run_pk: int, task_id: str, try_number: int, expected: Iterable[TaskState]
) -> TaskState | None:
    """The instance's state if it is in ``expected`` at ``try_number``, locking the row; else None."""
    stmt = sa.select(ti.c.state, ti.c.try_number).where(ti.c.run_pk == run_pk, ti.c.task_id == task_id)
    if conn.dialect.name != "sqlite":  # SQLite has no row locks; BEGIN IMMEDIATE already serializes writers
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise NotFoundError(f"no task {task_id!r} in the run with primary key {run_pk}")
    state = TaskState(row.state)
    if row.try_number != try_number or state not in set(expected):
        return None
    return state


def replay_try(
    conn: Connection,
    run_pk: int,
    task_id: str,
    try_number: int,
    *,
    outcome: TryOutcome | None,
    pid: int | None = None,
    at: dt.datetime | None = None,
    log_path: str | None = None,
    hostname: str | None = None,
) -> bool:
    """Record a try known from a worker's journal after a scheduler restart: its end, or (when
    ``outcome`` is None) that it is running. Applies unless the database already holds this
    try's end, a later try, or a clear of it; returns whether it applied.

    The scheduler may not have recorded the try as queued before it crashed (it hands a try to
    a worker first and records the step after), so the database's try number may be behind.
    """
    row = conn.execute(
        sa.select(ti.c.state, ti.c.try_number).where(ti.c.run_pk == run_pk, ti.c.task_id == task_id)
    ).first()
    if row is None or row.try_number > try_number:
        return False
    state = TaskState(row.state)
    if row.try_number == try_number and state not in (S.QUEUED, S.RUNNING):
        return False
    if row.try_number < try_number and state.is_terminal:
        return False
    open_states = (state,)
    conn.execute(sa.update(ti).where(ti.c.run_pk == run_pk, ti.c.task_id == task_id).values(try_number=try_number))
    who: dict[str, Any] = {"hostname": hostname, "pid": pid, "log_path": log_path}
    if outcome is None:
        return try_started(conn, run_pk, task_id, try_number, at=at, expected=open_states, **who)
    if state != S.RUNNING:
        try_started(conn, run_pk, task_id, try_number, at=outcome.started_at, expected=open_states, **who)
    return try_finished(conn, run_pk, task_id, try_number, outcome, hostname=hostname, pid=pid, log_path=log_path)


# --- clear and mark --------------------------------------------------------------------------
def _select_closure(
    conn: Connection, run_pk: int, task_ids: Sequence[str], *, downstream: bool, upstream: bool
) -> dict[str, dict[str, Any]]:
    """The requested task instances plus their downstream and/or upstream closure, from the
    run's recorded graph, as task id to row (state, try number, node)."""
    rows = {
        r.task_id: r._asdict()
        for r in conn.execute(
            sa.select(ti.c.task_id, ti.c.upstream, ti.c.state, ti.c.try_number, ti.c.node, ti.c.start_date).where(
                ti.c.run_pk == run_pk
            )
        )
    }
    missing = [t for t in task_ids if t not in rows]
    if missing:
        raise NotFoundError(f"no task {missing[0]!r} in the run with primary key {run_pk}")
    chosen = set(task_ids)
    if upstream:
        chosen |= closure(task_ids, {t: r["upstream"] for t, r in rows.items()})
    if downstream:
        down: dict[str, list[str]] = {t: [] for t in rows}
        for task_id, row in rows.items():
            for up in row["upstream"]:
                down.setdefault(up, []).append(task_id)
        chosen |= closure(task_ids, down)
    return {t: rows[t] for t in rows if t in chosen}


def clear_task_instances(
    conn: Connection,
    run_pk: int,
    task_ids: Iterable[str],
    *,
    downstream: bool = False,
    upstream: bool = False,
    requeue_run: bool = True,
    reason: str = "cleared",
    now: dt.datetime | None = None,
) -> list[str]:
    """Send task instances back to ``none`` so they run again, with their downstream and/or
    upstream closure from the run's recorded graph. Their results are deleted, their try
    history is kept, and each gets its retries afresh (``max_tries`` is extended from the
    current try number). A finished run goes back to queued unless ``requeue_run`` is false.
    Returns the ids cleared, in graph order.
    """
    now = now or utcnow()
    lock_runs(conn, [run_pk])  # before reading: a scheduler step must not interleave (lock_runs)
    rows = _select_closure(conn, run_pk, list(task_ids), downstream=downstream, upstream=upstream)
    if not rows:
        return []
    stmt = (
        sa.update(ti)
        .where(ti.c.run_pk == run_pk, ti.c.task_id == sa.bindparam("b_task_id"))
        .values(
            state=S.NONE.value,
            max_tries=sa.bindparam("b_max_tries"),
            start_date=None,
            end_date=None,
            duration=None,
            hostname=None,
            pid=None,
            heartbeat_at=None,
            next_try_at=None,
            updated_at=now,
        )
    )
    params = [
        {"b_task_id": t, "b_max_tries": r["try_number"] + int(r["node"].get("retries", 0)) + 1} for t, r in rows.items()
    ]
    conn.execute(stmt, params)
    _end_open_tries(conn, run_pk, rows, S.FAILED, f"stopped: {reason} while it ran", now)
    ids = list(rows)
    for part in chunks(ids):
        conn.execute(sa.delete(task_results).where(task_results.c.run_pk == run_pk, task_results.c.task_id.in_(part)))
    events = [NewStateEvent(run_pk, t, r["state"], S.NONE.value, reason, r["try_number"], now) for t, r in rows.items()]
    add_state_events(conn, events)
    if requeue_run:
        set_run_state(
            conn, run_pk, RunState.QUEUED, at=now, expected=(RunState.SUCCESS, RunState.FAILED), reason=reason
        )
    bump_revision(conn, run_pk, now=now)
    return _in_graph_order(conn, run_pk, ids)


def mark_task_instances(
    conn: Connection,
    run_pk: int,
    task_ids: Iterable[str],
    state: TaskState,
    *,
    downstream: bool = False,
    upstream: bool = False,
    reason: str = "",
    now: dt.datetime | None = None,
) -> list[str]:
    """Set task instances (and their downstream and/or upstream closure) to ``success``,
    ``failed`` or ``skipped`` by hand. Instances already in that state are left alone. Returns
    the ids changed, in graph order."""
    if state not in MANUAL_TARGETS or state == S.NONE:
        allowed = ", ".join(sorted(s.value for s in MANUAL_TARGETS if s != S.NONE))
        raise InvalidTransitionError(
            f"cannot mark tasks {state.value}: a task may be marked {allowed} (use clear to run it again)"
        )
    now = now or utcnow()
    lock_runs(conn, [run_pk])  # before reading: a scheduler step must not interleave (lock_runs)
    rows = _select_closure(conn, run_pk, list(task_ids), downstream=downstream, upstream=upstream)
    changed = {t: r for t, r in rows.items() if r["state"] != state.value}
    if not changed:
        return []
    ids = list(changed)
    for part in chunks(ids):
        conn.execute(
            sa.update(ti)
            .where(ti.c.run_pk == run_pk, ti.c.task_id.in_(part))
            .values(state=state.value, end_date=now, next_try_at=None, updated_at=now)
        )
    for task_id, row in changed.items():  # one that had started ends with its duration, as in Airflow
        if (started := row["start_date"]) is not None:
            started = started if started.tzinfo is not None else started.replace(tzinfo=dt.UTC)
            conn.execute(
                sa.update(ti)
                .where(ti.c.run_pk == run_pk, ti.c.task_id == task_id)
                .values(duration=max((now - started).total_seconds(), 0.0))
            )
    why = reason or f"marked {state.value}"
    _end_open_tries(conn, run_pk, changed, state, f"stopped: {why} while it ran", now)
    add_state_events(
        conn, [NewStateEvent(run_pk, t, r["state"], state.value, why, r["try_number"], now) for t, r in changed.items()]
    )
    bump_revision(conn, run_pk, now=now)
    return _in_graph_order(conn, run_pk, ids)


def _end_open_tries(
    conn: Connection, run_pk: int, rows: dict[str, dict[str, Any]], state: TaskState, why: str, now: dt.datetime
) -> None:
    """End the try rows of instances that had a try queued or running when they were marked or
    cleared: the scheduler stops such a try, and its own end is then refused (the instance moved
    on), so without this the try would show as running for ever."""
    active = [t for t, r in rows.items() if TaskState(r["state"]) in ACTIVE]
    for part in chunks(active):
        open_tries = conn.execute(
            sa.select(task_tries.c.task_id, task_tries.c.try_number, task_tries.c.start_date).where(
                task_tries.c.run_pk == run_pk,
                task_tries.c.task_id.in_(part),
                task_tries.c.state.in_([S.QUEUED.value, S.RUNNING.value]),
            )
        ).all()
        for row in open_tries:
            started = row.start_date
            if started is not None and started.tzinfo is None:
                started = started.replace(tzinfo=dt.UTC)
            conn.execute(
                sa.update(task_tries)
                .where(
                    task_tries.c.run_pk == run_pk,
                    task_tries.c.task_id == row.task_id,
                    task_tries.c.try_number == row.try_number,
                    task_tries.c.state.in_([S.QUEUED.value, S.RUNNING.value]),
                )
                .values(
                    state=state.value,
                    end_date=now,
                    duration=(now - started).total_seconds() if started is not None else None,
                    error=why,
                )
            )


def _in_graph_order(conn: Connection, run_pk: int, ids: list[str]) -> list[str]:
    wanted = set(ids)
    order = conn.execute(sa.select(ti.c.task_id).where(ti.c.run_pk == run_pk).order_by(ti.c.ordinal)).scalars()
    return [t for t in order if t in wanted]
