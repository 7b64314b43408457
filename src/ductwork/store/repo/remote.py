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
from ductwork.store.tables import TRY_COLUMNS, code_bundles, task_instances, task_tries, workers
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


@dataclass(frozen=True, slots=True)
class TryStart:
    """queued -> running for one try number, by a worker."""

    run_pk: int
    task_id: str
    try_number: int
    worker: str
    pid: int
    at: dt.datetime
    log_path: str | None

    def params(self, p: str = "") -> dict[str, Any]:
        return {
            f"{p}k_pk": self.run_pk,
            f"{p}k_task": self.task_id,
            f"{p}k_try": self.try_number,
            f"{p}v_at": self.at,
            f"{p}v_host": self.worker,
            f"{p}v_pid": self.pid,
            f"{p}v_log": self.log_path,
        }


@dataclass(frozen=True, slots=True)
class TryEnd:
    """A try's end, applied if its instance is still in an ``expected`` state at its number.
    ``worker``, ``pid`` and ``log_path`` overwrite the start's only when given (a scheduler
    declaring a try lost)."""

    run_pk: int
    task_id: str
    try_number: int
    outcome: TryOutcome
    encoded: dict[str, Any]
    """The outcome as JSON data."""
    expected: tuple[str, ...] = (S.RUNNING.value,)
    worker: str | None = None
    pid: int | None = None
    log_path: str | None = None

    def params(self, p: str = "") -> dict[str, Any]:
        outcome = self.outcome
        return {
            f"{p}k_pk": self.run_pk,
            f"{p}k_task": self.task_id,
            f"{p}k_try": self.try_number,
            f"{p}v_state": outcome.state.value,
            f"{p}v_try": self.try_number - 1 if outcome.state in _NOT_A_TRY else self.try_number,
            f"{p}v_start": outcome.started_at,
            f"{p}v_end": outcome.ended_at,
            f"{p}v_duration": outcome.duration,
            f"{p}v_next": outcome.next_try_at,
            f"{p}v_error": outcome.error,
            f"{p}v_traceback": outcome.traceback,
            f"{p}v_rendered": outcome.rendered or None,
            f"{p}v_outcome": self.encoded,
            f"{p}v_host": self.worker,
            f"{p}v_pid": self.pid,
            f"{p}v_log": self.log_path,
        }

    def updated(self) -> tuple[str, ...]:
        """The try row's columns this end overwrites when the row exists (it was started)."""
        update = ["state", "end_date", "duration", "error", "traceback", "rendered", "outcome"]
        if self.worker is not None:
            update += ["hostname", "pid"]
        if self.log_path is not None:
            update.append("log_path")
        if self.outcome.started_at is not None:
            update.append("start_date")
        return tuple(update)


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
    return record_steps(conn, None, TryStart(run_pk, task_id, try_number, worker, pid, at, log_path))[1]


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
    values = tuple(s.value for s in expected)
    step = TryEnd(run_pk, task_id, try_number, outcome, encoded, values, worker, pid, log_path)
    return record_steps(conn, step, None)[0]


def one_statement(dialect: str, end: TryEnd | None, start: TryStart | None) -> bool:
    """Whether ``record_steps`` writes these steps in a single statement, so that the caller
    can run it without a transaction around it (one round trip instead of three: no BEGIN and
    COMMIT of their own)."""
    if dialect != "postgresql" or (end is not None and end.outcome.new_nodes):
        return False
    return end is None or start is None or (end.run_pk, end.task_id) != (start.run_pk, start.task_id)


def record_steps(conn: Connection, end: TryEnd | None, start: TryStart | None) -> tuple[Found | None, Found | None]:
    """A try's end and the next try's start (either may be absent), each with its try row.
    Returns, for each, ``None`` when it applied, else what was found.

    On PostgreSQL each step and its try row are one statement (``WITH`` the guarded UPDATE
    ``RETURNING``, the upsert of the try row), and an end with a start are one statement too
    (``one_statement``): a worker's try costs one round trip to the database."""
    if conn.dialect.name != "postgresql":
        return (_end_apart(conn, end) if end else None), (_start_apart(conn, start) if start else None)
    if end is not None and start is not None and one_statement("postgresql", end, start):
        params = {**end.params("e_"), **start.params("s_")}
        ended, started = conn.execute(_pg_end_and_start(end.expected, end.updated()), params).one()
        return (
            None if ended else _found(conn, end.run_pk, end.task_id),
            None if started else _found(conn, start.run_pk, start.task_id),
        )
    found_end: Found | None = None
    if end is not None:
        applied = conn.execute(_pg_end(end.expected, end.updated()), end.params()).first() is not None
        found_end = None if applied else _found(conn, end.run_pk, end.task_id)
        if applied and end.outcome.new_nodes:
            _nodes.grow(conn, end.run_pk, end.outcome.new_nodes, end.outcome.ended_at)
    found_start: Found | None = None
    if start is not None:
        applied = conn.execute(_pg_start(), start.params()).first() is not None
        found_start = None if applied else _found(conn, start.run_pk, start.task_id)
    return found_end, found_start


def _start_apart(conn: Connection, start: TryStart) -> Found | None:
    """``TryStart`` as an UPDATE and an upsert (MariaDB, SQLite)."""
    params = start.params()
    if conn.execute(_start_statement(), params).rowcount != 1:
        return _found(conn, start.run_pk, start.task_id)
    row = _try_row(params, {"state": S.RUNNING.value}, _START_ROW)
    upsert(conn, task_tries, [row], keys=_TRY_KEYS, update=("state", *_START_ROW))
    return None


def _end_apart(conn: Connection, end: TryEnd) -> Found | None:
    """``TryEnd`` as an UPDATE and an upsert (MariaDB, SQLite)."""
    params = end.params()
    if conn.execute(_end_statement(end.expected), params).rowcount != 1:
        return _found(conn, end.run_pk, end.task_id)
    if end.outcome.new_nodes:
        _nodes.grow(conn, end.run_pk, end.outcome.new_nodes, end.outcome.ended_at)
    upsert(conn, task_tries, [_try_row(params, {}, _END_ROW)], keys=_TRY_KEYS, update=end.updated())
    return None


def _try_row(params: Mapping[str, Any], fixed: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """A ``task_tries`` row from a step's bound values, the way ``_pg_with_try_row`` selects it."""
    row: dict[str, Any] = dict.fromkeys(TRY_COLUMNS)
    row.update(run_pk=params["k_pk"], task_id=params["k_task"], try_number=params["k_try"], **fixed)
    row.update({column: params[name] for column, name in columns.items()})
    return row


def _key_clauses(p: str) -> tuple[Any, ...]:
    return (
        ti.c.run_pk == sa.bindparam(f"{p}k_pk"),
        ti.c.task_id == sa.bindparam(f"{p}k_task"),
        ti.c.try_number == sa.bindparam(f"{p}k_try"),
    )


@functools.cache
def _start_statement(p: str = "") -> Any:
    """Built once: a worker runs it for every try, and building a statement costs more than
    running it. ``p`` prefixes the names of its bound values (two steps in one statement)."""
    at = sa.bindparam(f"{p}v_at", type_=ti.c.start_date.type)
    return (
        sa.update(ti)
        .where(*_key_clauses(p), ti.c.state == S.QUEUED.value)
        .values(
            state=S.RUNNING.value,
            start_date=at,
            end_date=None,
            duration=None,
            hostname=sa.bindparam(f"{p}v_host", type_=ti.c.hostname.type),
            pid=sa.bindparam(f"{p}v_pid", type_=ti.c.pid.type),
            heartbeat_at=at,
            next_try_at=None,
            updated_at=at,
        )
    )


@functools.cache
def _end_statement(expected: tuple[str, ...], p: str = "") -> Any:
    end = sa.bindparam(f"{p}v_end", type_=ti.c.end_date.type)
    return (
        sa.update(ti)
        .where(*_key_clauses(p), sa.or_(*(ti.c.state == value for value in expected)))  # no expanding IN
        .values(
            state=sa.bindparam(f"{p}v_state", type_=ti.c.state.type),
            try_number=sa.bindparam(f"{p}v_try", type_=ti.c.try_number.type),
            start_date=sa.func.coalesce(ti.c.start_date, sa.bindparam(f"{p}v_start", type_=ti.c.start_date.type)),
            end_date=end,
            duration=sa.bindparam(f"{p}v_duration", type_=ti.c.duration.type),
            next_try_at=sa.bindparam(f"{p}v_next", type_=ti.c.next_try_at.type),
            updated_at=end,
        )
    )


_START_ROW = {"start_date": "v_at", "hostname": "v_host", "pid": "v_pid", "log_path": "v_log"}
_END_ROW = {
    "state": "v_state",
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


def _pg_with_try_row(step: Any, name: str, row: Mapping[str, Any], update: tuple[str, ...], p: str) -> Any:
    """``step`` (an UPDATE of the task instance) and the upsert of its try row as one statement:
    ``WITH name AS (UPDATE ... RETURNING key) INSERT INTO task_tries SELECT ... FROM name ON
    CONFLICT ... RETURNING``. A row comes back only when the step applied."""
    from sqlalchemy.dialects import postgresql

    applied = step.returning(ti.c.run_pk, ti.c.task_id).cte(name)
    tt = task_tries
    chosen = sa.select(
        applied.c.run_pk,
        applied.c.task_id,
        sa.bindparam(f"{p}k_try", type_=tt.c.try_number.type),  # the instance's may have gone back one
        *(
            sa.bindparam(f"{p}{value}", type_=tt.c[column].type) if isinstance(value, str) else value
            for column, value in row.items()
        ),
    )
    insert = postgresql.insert(tt).from_select(["run_pk", "task_id", "try_number", *row], chosen)
    return insert.on_conflict_do_update(
        index_elements=list(_TRY_KEYS), set_={c: insert.excluded[c] for c in update}
    ).returning(tt.c.try_number)


@functools.cache
def _pg_start(p: str = "") -> Any:
    row = {"state": sa.literal(S.RUNNING.value, type_=task_tries.c.state.type), **_START_ROW}
    return _pg_with_try_row(_start_statement(p), f"{p}claimed", row, ("state", *_START_ROW), p)


@functools.cache
def _pg_end(expected: tuple[str, ...], update: tuple[str, ...], p: str = "") -> Any:
    return _pg_with_try_row(_end_statement(expected, p), f"{p}ended", _END_ROW, update, p)


@functools.cache
def _pg_end_and_start(expected: tuple[str, ...], update: tuple[str, ...]) -> Any:
    """One try's end and another's start in one statement: two rows of ``task_instances`` and
    two of ``task_tries``, each written by one data-modifying ``WITH`` (the two tries differ,
    ``one_statement``, so no row is written twice). Selects how many of each applied."""
    ended = _pg_end(expected, update, "e_").cte("e_try")
    started = _pg_start("s_").cte("s_try")
    count = sa.func.count()
    return sa.select(
        sa.select(count).select_from(ended).scalar_subquery(),
        sa.select(count).select_from(started).scalar_subquery(),
    )


@dataclass(frozen=True, slots=True)
class TryView:
    """A try as the database has it, for a scheduler checking the tries it handed out."""

    state: TaskState
    try_number: int
    hostname: str | None
    heartbeat_at: dt.datetime | None
    outcome: dict[str, Any] | None
    """The outcome the worker recorded for this try number, if it ended."""
    start_date: dt.datetime | None = None
    """When the instance's current try started (a try declared lost keeps its real start)."""


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
                sa.select(
                    ti.c.task_id, ti.c.state, ti.c.try_number, ti.c.hostname, ti.c.heartbeat_at, ti.c.start_date
                ).where(ti.c.run_pk == pk, ti.c.task_id.in_(part))
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
                    TaskState(r.state),
                    r.try_number,
                    r.hostname,
                    r.heartbeat_at,
                    outcomes.get((r.task_id, number)),
                    r.start_date if r.state == S.RUNNING.value and r.try_number == number else None,
                )
    return out


def record_rendered(conn: Connection, run_pk: int, task_id: str, try_number: int, rendered: Mapping[str, Any]) -> bool:
    """A running try's rendered template fields, before its end records them with the rest:
    the web UI shows what a long try runs (its SQL, its command) while it runs. Never replaces
    what is there (its end's, when that came first)."""
    tt = task_tries
    stmt = (
        sa.update(tt)
        .where(
            tt.c.run_pk == run_pk,
            tt.c.task_id == task_id,
            tt.c.try_number == try_number,
            tt.c.rendered.is_(None),
        )
        .values(rendered=dict(rendered))
    )
    return conn.execute(stmt).rowcount == 1


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


def largest_statement(conn: Connection) -> int | None:
    """The most bytes one statement may carry (MariaDB/MySQL's ``max_allowed_packet``), or
    None where a bundle of any sensible size fits. A larger statement makes MariaDB drop the
    connection, which reads as an outage to the caller, not as a refusal."""
    if conn.dialect.name not in ("mysql", "mariadb"):
        return None
    value = conn.execute(sa.text("SELECT @@max_allowed_packet")).scalar()
    return None if value is None else int(value)


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


def touch_bundle(conn: Connection, digest: str, *, now: dt.datetime | None = None) -> None:
    """Mark a stored bundle published again (a scheduler's start, a folder changed back): its
    ``created_at`` says when it was last the current code, which retention goes by."""
    conn.execute(sa.update(code_bundles).where(code_bundles.c.hash == digest).values(created_at=now or utcnow()))


def old_bundles(conn: Connection, cutoff: dt.datetime) -> list[tuple[str, str | None]]:
    """(hash, location) of the bundles last published before ``cutoff``, except the newest one
    (the code a scheduler still sends, however long its folder has not changed)."""
    newest = sa.select(sa.func.max(code_bundles.c.created_at)).scalar_subquery()
    stmt = sa.select(code_bundles.c.hash, code_bundles.c.location).where(
        code_bundles.c.created_at < cutoff, code_bundles.c.created_at < newest
    )
    return [(r.hash, r.location) for r in conn.execute(stmt)]


def delete_bundles(conn: Connection, digests: list[str]) -> int:
    if not digests:
        return 0
    return int(conn.execute(sa.delete(code_bundles).where(code_bundles.c.hash.in_(digests))).rowcount)


def get_bundle(conn: Connection, digest: str) -> tuple[bytes | None, str | None] | None:
    """(data, location) of a bundle, or None when no bundle has that hash."""
    row = conn.execute(
        sa.select(code_bundles.c.data, code_bundles.c.location).where(code_bundles.c.hash == digest)
    ).first()
    return None if row is None else (row.data, row.location)
