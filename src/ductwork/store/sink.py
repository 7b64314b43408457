"""``SqlEventSink``: the supervisor's events, written to the store one step per transaction.

A step of the supervisor can hold thousands of events (a wide fan-out becoming ready, a
failure skipping a subtree). Writing them one statement each would make the database the
scheduler's bottleneck, so the sink first folds the step's events into the final values per
row, in event order, and then writes each table with as few executemany statements as the
shapes of the rows allow:

- task instances: one UPDATE per set of changed columns (typically two or three per step);
- state events: one INSERT of every transition, in order;
- tries: one upsert per kind of change (started, ended);
- runs: one UPDATE for runs that started, one for runs that ended;
- new nodes (dynamic dependencies): inserted before the state updates that refer to them.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from ductwork.core.events import EngineEvent, NodesAdded, RunEnded, StateChanged, TryBegan, TryEnded, TryRendered
from ductwork.core.graph import NodeSpec
from ductwork.core.states import TERMINAL, RunState, TaskState
from ductwork.errors import NotFoundError
from ductwork.store import fastexec
from ductwork.store.engine import transaction
from ductwork.store.repo import _nodes
from ductwork.store.repo._util import chunks
from ductwork.store.repo.events import INSERT as state_events_insert
from ductwork.store.repo.events import NewStateEvent
from ductwork.store.repo.runs import lock_runs, run_pks
from ductwork.store.tables import TRY_COLUMNS, runs, task_instances, task_tries
from ductwork.store.types import utcnow
from ductwork.store.upsert import upsert_statement

S = TaskState
log = logging.getLogger(__name__)
_BEFORE_END = frozenset({S.QUEUED.value, S.RUNNING.value})
_ENDED_A_TRY = [s.value for s in (S.SUCCESS, S.FAILED, S.SKIPPED, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE)]
_TRY_KEYS = ("run_pk", "task_id", "try_number")
_TRY_START = ("start_date", "hostname", "pid", "log_path")
_TRY_START_RENDERED = (*_TRY_START, "rendered")
_TRY_END = ("state", "end_date", "duration", "error", "traceback", "rendered")
# A new try wipes what the previous one left on the instance.
_NEW_TRY_RESET: dict[str, Any] = dict.fromkeys(
    ("start_date", "end_date", "duration", "hostname", "pid", "heartbeat_at", "next_try_at")
)


@dataclass
class _Step:
    """One step's events folded into rows to write."""

    ti: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    events: list[NewStateEvent] = field(default_factory=list)
    tries: dict[tuple[int, str, int], dict[str, Any]] = field(default_factory=dict)
    try_updates: dict[tuple[int, str, int], set[str]] = field(default_factory=dict)
    nodes: list[tuple[int, tuple[NodeSpec, ...]]] = field(default_factory=list)
    started: dict[int, dt.datetime] = field(default_factory=dict)
    ended: dict[int, tuple[RunState, dt.datetime]] = field(default_factory=dict)

    def instance(self, run_pk: int, task_id: str) -> dict[str, Any]:
        return self.ti.setdefault((run_pk, task_id), {})

    def attempt(self, run_pk: int, task_id: str, try_number: int, columns: Sequence[str]) -> dict[str, Any]:
        key = (run_pk, task_id, try_number)
        self.try_updates.setdefault(key, set()).update(columns)
        row = self.tries.get(key)
        if row is None:
            row = dict.fromkeys(TRY_COLUMNS)
            row.update(run_pk=run_pk, task_id=task_id, try_number=try_number)
            self.tries[key] = row
        return row


class SqlEventSink:
    """An ``EventSink`` that records the supervisor's events in the store.

    ``record`` writes one step in one transaction of its own; ``write`` does the same inside a
    transaction the caller already has (for a scheduler that also writes other rows in the step).
    """

    def __init__(self, engine: Engine, *, now: Callable[[], dt.datetime] = utcnow, owner: int | None = None) -> None:
        """``owner``: the scheduler job that must hold a run's lease for its events to be written
        (several schedulers on one database); events of runs it lost are dropped and their keys
        kept in ``lost_runs`` for the scheduler to let go of."""
        self.engine = engine
        self._now = now
        self.owner = owner
        self.lost_runs: set[str] = set()
        self._pks: dict[str, int] = {}
        self._revisions: dict[str, int] = {}
        self._running: set[int] = set()
        self._lock = threading.Lock()

    def remember(self, run_key: str, run_pk: int, revision: int | None = None) -> None:
        """The primary key of the run with this key now (a run deleted and created again under
        the same key has a new one; a key kept from before would point at nothing), and the
        ``revision`` its driver loaded: while the run's row holds another one, it was changed
        from outside (cleared, marked, cancelled) since, and only the events that agree with what
        the change left are written (``_agreeing``), until the driver loads it again."""
        with self._lock:
            self._pks[run_key] = run_pk
            if revision is not None:
                self._revisions[run_key] = revision

    def record(self, events: Sequence[EngineEvent]) -> None:
        if not events:
            return
        with transaction(self.engine) as conn:
            self.write(conn, events)

    def write(self, conn: Connection, events: Sequence[EngineEvent]) -> None:
        pks = self._resolve(conn, {e.run_key for e in events})
        with self._lock:
            expected = {key: self._revisions[key] for key in pks if key in self._revisions}
        if self.owner is not None or expected:
            held = lock_runs(conn, pks.values())
            if self.owner is not None:
                lost = {key for key, pk in pks.items() if pk not in held or held[pk][0] != self.owner}
                if lost:
                    self.lost_runs |= lost
                    events = [e for e in events if e.run_key not in lost]
                    expected = {key: rev for key, rev in expected.items() if key not in lost}
            changed = {pks[key] for key, rev in expected.items() if held.get(pks[key], (None, rev))[1] != rev}
            if changed:
                events = _agreeing(conn, events, {key: pk for key, pk in pks.items() if pk in changed})
        step = _Step()
        for event in events:
            self._fold(step, pks[event.run_key], event)
        self._flush(conn, step)
        with self._lock:
            self._running.update(step.started)
            self._running.difference_update(step.ended)
            ended_keys = {e.run_key for e in events if isinstance(e, RunEnded)}
            for key in ended_keys:
                self._pks.pop(key, None)
                self._revisions.pop(key, None)

    # --- folding ----------------------------------------------------------------------------
    def _fold(self, step: _Step, pk: int, event: EngineEvent) -> None:
        if isinstance(event, StateChanged):
            self._state_changed(step, pk, event)
        elif isinstance(event, TryBegan):
            row = step.instance(pk, event.task_id)
            row.update(start_date=event.at, hostname=event.worker or None, pid=event.pid, heartbeat_at=event.at)
            attempt = step.attempt(
                pk, event.task_id, event.try_number, _TRY_START_RENDERED if event.rendered else _TRY_START
            )
            attempt.update(start_date=event.at, hostname=event.worker or None, pid=event.pid, log_path=event.log_path)
            _begun(attempt, event.rendered)
        elif isinstance(event, TryRendered):
            _begun(step.attempt(pk, event.task_id, event.try_number, ("rendered",)), event.rendered)
        elif isinstance(event, TryEnded):
            self._try_ended(step, pk, event)
        elif isinstance(event, NodesAdded):
            step.nodes.append((pk, event.nodes))
        elif isinstance(event, RunEnded):
            step.ended[pk] = (event.state, event.at)
            why = event.reason or "run ended"
            step.events.append(NewStateEvent(pk, None, None, event.state.value, why, 0, event.at))

    def _state_changed(self, step: _Step, pk: int, event: StateChanged) -> None:
        change = event.change
        new = change.new
        row = step.instance(pk, change.task_id)
        if new == S.QUEUED:
            row.update(_NEW_TRY_RESET)
        row["state"] = new.value
        # The supervisor gives a rescheduled try back right after this event; so does the store.
        row["try_number"] = event.try_number - 1 if new == S.UP_FOR_RESCHEDULE else event.try_number
        row["updated_at"] = event.at
        if new == S.RUNNING and row.get("start_date") is None:
            row["start_date"] = event.at
        if new in TERMINAL and row.get("end_date") is None:
            row["end_date"] = event.at
        step.events.append(
            NewStateEvent(pk, change.task_id, change.old.value, new.value, change.reason, event.try_number, event.at)
        )
        if pk not in self._running:
            step.started.setdefault(pk, event.at)

    def _try_ended(self, step: _Step, pk: int, event: TryEnded) -> None:
        outcome = event.outcome
        row = step.instance(pk, event.task_id)
        row.update(end_date=outcome.ended_at, duration=outcome.duration, next_try_at=outcome.next_try_at)
        if row.get("start_date") is None:
            row["start_date"] = outcome.started_at
        attempt = step.attempt(pk, event.task_id, event.try_number, _TRY_END)
        if attempt["start_date"] is None:
            attempt["start_date"] = outcome.started_at
        attempt.update(
            state=outcome.state.value,
            end_date=outcome.ended_at,
            duration=outcome.duration,
            error=outcome.error,
            traceback=outcome.traceback,
            rendered=outcome.rendered or None,
        )

    # --- writing ----------------------------------------------------------------------------
    def _flush(self, conn: Connection, step: _Step) -> None:
        now = self._now()
        for pk, nodes in step.nodes:
            _nodes.grow(conn, pk, nodes, now)
        self._update_instances(conn, step.ti, now)
        if step.events:
            fastexec.executemany(conn, state_events_insert, [e.row() for e in step.events])
        self._write_tries(conn, step)
        if step.started:
            stmt = (
                sa.update(runs)
                .where(runs.c.id == sa.bindparam("b_pk"), runs.c.state == RunState.QUEUED.value)
                .values(
                    state=RunState.RUNNING.value,
                    start_date=sa.func.coalesce(runs.c.start_date, sa.bindparam("b_at", type_=runs.c.start_date.type)),
                    updated_at=sa.bindparam("b_at", type_=runs.c.updated_at.type),
                )
            )
            conn.execute(stmt, [{"b_pk": pk, "b_at": at} for pk, at in step.started.items()])
        if step.ended:
            stmt = (
                sa.update(runs)
                .where(runs.c.id == sa.bindparam("b_pk"))
                .values(
                    state=sa.bindparam("b_state"),
                    end_date=sa.bindparam("b_at", type_=runs.c.end_date.type),
                    updated_at=sa.bindparam("b_at", type_=runs.c.updated_at.type),
                )
            )
            conn.execute(stmt, [{"b_pk": pk, "b_state": s.value, "b_at": at} for pk, (s, at) in step.ended.items()])

    def _update_instances(
        self, conn: Connection, rows: dict[tuple[int, str], dict[str, Any]], now: dt.datetime
    ) -> None:
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for (pk, task_id), values in rows.items():
            values.setdefault("updated_at", now)
            columns = tuple(sorted(values))
            params = {_BIND_NAMES.get(k) or _bind_name(k): v for k, v in values.items()}
            params["b_run_pk"], params["b_task_id"] = pk, task_id
            shapes.setdefault(columns, []).append(params)
        for columns, batch in shapes.items():
            guarded = [p for p in batch if p.get("b_state") in _BEFORE_END]
            plain = [p for p in batch if p.get("b_state") not in _BEFORE_END]
            if plain:
                fastexec.executemany(conn, _instance_update(columns, guarded=False), plain)
            if guarded:
                fastexec.executemany(conn, _instance_update(columns, guarded=True), guarded)

    def _write_tries(self, conn: Connection, step: _Step) -> None:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for key, row in step.tries.items():
            groups.setdefault(tuple(sorted(step.try_updates[key])), []).append(row)
        for update, rows in groups.items():
            fastexec.executemany(conn, upsert_statement(conn.dialect.name, task_tries, _TRY_KEYS, update), rows)

    # --- run keys ---------------------------------------------------------------------------
    def _resolve(self, conn: Connection, keys: set[str]) -> dict[str, int]:
        with self._lock:
            found = {k: self._pks[k] for k in keys if k in self._pks}
        missing = keys - found.keys()
        if missing:
            fetched = run_pks(conn, missing)
            unknown = sorted(missing - fetched.keys())
            if unknown:
                raise NotFoundError(
                    f"the engine reported events for run {unknown[0]!r}, which is not in the database; "
                    "runs must be created in the store (repo.runs.create_run) before they are supervised"
                )
            with self._lock:
                self._pks.update(fetched)
            found.update(fetched)
        return found


def _agreeing(conn: Connection, events: Sequence[EngineEvent], changed: dict[str, int]) -> list[EngineEvent]:
    """``events`` without those of the ``changed`` runs (key to primary key) that contradict
    what a change from outside left there: the driver decided them on the states it held
    before, and writing them would undo the change (a cleared task queued again under its old
    try, a cancelled run's skipped task sent to a worker, a re-queued run ended).

    A task's state change is kept when the row is still in the state it changes from (as a
    compare-and-set); once one is refused, the task's later events in the batch go too (a try
    that ended just before the change, not recorded yet, goes with them: the change was made on
    what was recorded, and wins). Ends of runs go (the driver reloads the run and ends it again
    if it is done); new nodes stay."""
    current: dict[tuple[int, str], str] = {}
    for part in chunks(sorted(set(changed.values()))):
        ti = task_instances
        rows = conn.execute(sa.select(ti.c.run_pk, ti.c.task_id, ti.c.state).where(ti.c.run_pk.in_(part)))
        current.update(((row.run_pk, row.task_id), row.state) for row in rows)
    refused: set[tuple[int, str]] = set()
    kept: list[EngineEvent] = []
    dropped = 0
    for event in events:
        pk = changed.get(event.run_key)
        if pk is None or isinstance(event, NodesAdded):
            kept.append(event)
            continue
        if isinstance(event, RunEnded):
            dropped += 1
            continue
        task_id = event.change.task_id if isinstance(event, StateChanged) else event.task_id
        key = (pk, task_id)
        if isinstance(event, StateChanged):
            if key not in refused and current.get(key) == event.change.old.value:
                current[key] = event.change.new.value
            else:
                refused.add(key)
        if key in refused:
            dropped += 1
        else:
            kept.append(event)
    if dropped:
        log.info(
            "runs %s were changed from outside while they ran: %d events that the change overrides were not recorded",
            ", ".join(sorted(k for k in changed)),
            dropped,
        )
    return kept


_BIND_NAMES: dict[str, str] = {}


def _bind_name(column: str) -> str:
    name = _BIND_NAMES[column] = f"b_{column}"
    return name


_STATEMENTS: dict[tuple[tuple[str, ...], bool], Any] = {}
"""Built statements by shape: building one costs more than executing it, and a step's shapes
repeat (two or three per step, the same ones step after step)."""


def _instance_update(columns: tuple[str, ...], *, guarded: bool) -> Any:
    """UPDATE task_instances for one set of columns; ``guarded`` never moves a try that ended
    (recorded when replaying a worker's journal) back to queued or running."""
    key = (columns, guarded)
    stmt = _STATEMENTS.get(key)
    if stmt is None:
        ti = task_instances
        stmt = (
            sa.update(ti)
            .where(ti.c.run_pk == sa.bindparam("b_run_pk"), ti.c.task_id == sa.bindparam("b_task_id"))
            .values({c: sa.bindparam(f"b_{c}", type_=ti.c[c].type) for c in columns})
        )
        if guarded:
            stmt = stmt.where(
                sa.not_(
                    sa.and_(
                        ti.c.try_number == sa.bindparam("b_try_number"),
                        # Inlined constants: executemany cannot expand an IN list.
                        ti.c.state.in_([sa.literal_column(f"'{v}'") for v in _ENDED_A_TRY]),
                    )
                )
            )
        _STATEMENTS[key] = stmt
    return stmt


def _begun(attempt: dict[str, Any], rendered: Mapping[str, Any] | None) -> None:
    """A begun try's rendered fields, if it has none yet (its end's come last and win), and its
    running state where the step has none (a later event of the step may set another)."""
    if rendered and attempt["rendered"] is None:
        attempt["rendered"] = rendered
    if attempt["state"] is None:
        attempt["state"] = S.RUNNING.value
