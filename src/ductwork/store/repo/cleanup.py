"""Deleting finished runs with everything recorded about them, and choosing which runs may go.

A run is deleted with its task instances, tries, results and state events, in one transaction
per batch. Some runs are never deleted, whoever asks:

- a run that is queued or running (the scheduler drives it; cancel it first);
- the latest run of each flow (by logical date): the UI's grid starts from it and a task that
  ``depends_on_past`` looks at it;
- the latest *scheduled* run of each flow: the scheduler reads its data interval to know where
  the schedule stands, and without it a flow with ``catchup`` would create the deleted runs again;
- the run just before each queued or running run of a flow with ``depends_on_past`` tasks:
  they read it.

Files are not touched here (repositories do no file I/O): ``delete_runs`` returns the offloaded
result objects that no remaining row references and the log files the tries recorded, for the
caller to remove once the transaction has committed. An object still referenced by a row that
stays is never returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.core.states import RunState
from ductwork.store.repo._util import chunks
from ductwork.store.tables import (
    dead_letters,
    import_errors,
    message_receipts,
    runs,
    state_events,
    task_instances,
    task_results,
    task_tries,
)

FINISHED = (RunState.SUCCESS.value, RunState.FAILED.value)
_SMALL_CHUNK = 200
"""Run primary keys per ``IN (...)`` when deleting: a batch is small by design."""


@dataclass(frozen=True, slots=True)
class RunRef:
    """A run as a deletion names it."""

    pk: int
    flow_id: str
    run_id: str
    state: str
    logical_date: dt.datetime
    end_date: dt.datetime | None


@dataclass(frozen=True)
class Removed:
    """What a deletion removed (or, for a dry run, would remove) from the database, and the files
    the caller must remove after committing: log files and offloaded result objects."""

    runs: tuple[RunRef, ...] = ()
    task_instances: int = 0
    tries: int = 0
    results: int = 0
    events: int = 0
    log_paths: tuple[str, ...] = ()
    references: tuple[str, ...] = ()

    def __add__(self, other: Removed) -> Removed:
        return Removed(
            self.runs + other.runs,
            self.task_instances + other.task_instances,
            self.tries + other.tries,
            self.results + other.results,
            self.events + other.events,
            self.log_paths + other.log_paths,
            self.references + other.references,
        )


@dataclass(frozen=True)
class Protection:
    """Why a run must stay, by primary key."""

    reasons: dict[int, str] = field(default_factory=dict)

    def __contains__(self, pk: object) -> bool:
        return pk in self.reasons


def _latest(conn: Connection, flow_id: str, *, scheduled: bool) -> int | None:
    stmt = sa.select(runs.c.id).where(runs.c.flow_id == flow_id)
    if scheduled:
        stmt = stmt.where(runs.c.run_type == "scheduled")
    stmt = stmt.order_by(runs.c.logical_date.desc(), runs.c.id.desc()).limit(1)
    return conn.execute(stmt).scalar_one_or_none()


def protected_runs(conn: Connection, flow_ids: Iterable[str] | None = None) -> Protection:
    """The runs of these flows (every flow when None) that must never be deleted because they
    are the latest, or the latest scheduled, run of their flow, or the run before an active one
    (its ``depends_on_past``). Active runs are kept by the state filters of every deletion."""
    if flow_ids is None:
        flow_ids = conn.execute(sa.select(runs.c.flow_id).distinct()).scalars().all()
    reasons: dict[int, str] = {}
    for flow_id in flow_ids:
        scheduled = _latest(conn, flow_id, scheduled=True)
        if scheduled is not None:
            reasons[scheduled] = (
                f"it is the latest scheduled run of flow {flow_id!r}, which the scheduler reads to know where "
                "the flow's schedule stands"
            )
        latest = _latest(conn, flow_id, scheduled=False)
        if latest is not None:
            reasons[latest] = (
                f"it is the latest run of flow {flow_id!r} (the grid starts from it and depends_on_past reads it)"
            )
        for before in _runs_before_active(conn, flow_id) if _waits_on_its_past(conn, flow_id) else ():
            reasons.setdefault(
                before,
                f"it is the run of flow {flow_id!r} before one still under way, whose depends_on_past tasks wait on it",
            )
    return Protection(reasons)


def _waits_on_its_past(conn: Connection, flow_id: str) -> bool:
    """Whether a task of the flow has ``depends_on_past`` (a flow not recorded: kept as if so)."""
    from ductwork.store.repo import flows as flow_repo

    data = flow_repo.get_flow_graph_data(conn, flow_id)
    if data is None:
        return True
    return any(node.get("depends_on_past") for node in data.get("nodes", ()))


def _runs_before_active(conn: Connection, flow_id: str) -> set[int]:
    """For each queued or running run of the flow, the run just before it by logical date: the
    one its ``depends_on_past`` tasks read (deleting it would let them run as if it had none)."""
    active = conn.execute(
        sa.select(runs.c.logical_date).where(runs.c.flow_id == flow_id, runs.c.state.not_in(FINISHED)).distinct()
    ).scalars()
    found: set[int] = set()
    for when in active:
        before = conn.execute(
            sa.select(runs.c.id)
            .where(runs.c.flow_id == flow_id, runs.c.logical_date < when)
            .order_by(runs.c.logical_date.desc(), runs.c.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if before is not None:
            found.add(before)
    return found


def _ref(row: Any) -> RunRef:
    return RunRef(row.id, row.flow_id, row.run_id, row.state, row.logical_date, row.end_date)


_REF_COLUMNS = (runs.c.id, runs.c.flow_id, runs.c.run_id, runs.c.state, runs.c.logical_date, runs.c.end_date)


def finished_before(
    conn: Connection,
    cutoff: dt.datetime,
    *,
    flow_id: str | None = None,
    after_pk: int = 0,
    limit: int = 100,
    protection: Protection | None = None,
) -> list[RunRef]:
    """Up to ``limit`` finished runs that ended before ``cutoff``, by primary key above
    ``after_pk`` (pass the last key seen to walk the table in pages), without protected runs.

    Walking by primary key keeps each page one range scan however many runs the table holds.
    """
    ended = sa.func.coalesce(runs.c.end_date, runs.c.updated_at)
    protection = protection if protection is not None else protected_runs(conn, [flow_id] if flow_id else None)
    found: list[RunRef] = []
    cursor = after_pk
    while len(found) < limit:
        stmt = (
            sa.select(*_REF_COLUMNS)
            .where(runs.c.id > cursor, runs.c.state.in_(FINISHED), ended < cutoff)
            .order_by(runs.c.id)
            .limit(limit)
        )
        if flow_id is not None:
            stmt = stmt.where(runs.c.flow_id == flow_id)
        page = [_ref(r) for r in conn.execute(stmt)]
        if not page:
            break
        cursor = page[-1].pk
        found += [r for r in page if r.pk not in protection][: limit - len(found)]
    return found


def count_finished_before(conn: Connection, cutoff: dt.datetime, *, flow_id: str | None = None) -> int:
    """How many finished runs ended before ``cutoff`` (protected ones included)."""
    ended = sa.func.coalesce(runs.c.end_date, runs.c.updated_at)
    stmt = sa.select(sa.func.count()).select_from(runs).where(runs.c.state.in_(FINISHED), ended < cutoff)
    if flow_id is not None:
        stmt = stmt.where(runs.c.flow_id == flow_id)
    return int(conn.execute(stmt).scalar_one())


def _lock_finished(conn: Connection, pks: Sequence[int]) -> list[RunRef]:
    """The runs among ``pks`` that are still finished, locked against concurrent changes (a
    clear that would queue one of them again waits for this transaction, then finds it gone)."""
    found: list[RunRef] = []
    for part in chunks(list(pks), _SMALL_CHUNK):
        stmt = sa.select(*_REF_COLUMNS).where(runs.c.id.in_(part), runs.c.state.in_(FINISHED)).order_by(runs.c.id)
        if conn.dialect.name != "sqlite":  # SQLite's write transaction already holds the whole file
            stmt = stmt.with_for_update()
        found += [_ref(r) for r in conn.execute(stmt)]
    return found


def _count(conn: Connection, table: sa.Table, pks: Sequence[int]) -> int:
    total = 0
    for part in chunks(list(pks), _SMALL_CHUNK):
        total += int(
            conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.run_pk.in_(part))).scalar_one()
        )
    return total


def _files(conn: Connection, pks: Sequence[int]) -> tuple[list[str], list[str]]:
    logs: list[str] = []
    refs: list[str] = []
    for part in chunks(list(pks), _SMALL_CHUNK):
        logs += conn.execute(
            sa.select(task_tries.c.log_path).where(task_tries.c.run_pk.in_(part), task_tries.c.log_path.is_not(None))
        ).scalars()
        refs += conn.execute(
            sa.select(task_results.c.reference).where(
                task_results.c.run_pk.in_(part), task_results.c.reference.is_not(None)
            )
        ).scalars()
    return logs, refs


def measure(conn: Connection, refs: Sequence[RunRef]) -> Removed:
    """What deleting these runs would remove (a dry run)."""
    pks = [r.pk for r in refs]
    logs, references = _files(conn, pks)
    return Removed(
        runs=tuple(refs),
        task_instances=_count(conn, task_instances, pks),
        tries=_count(conn, task_tries, pks),
        results=_count(conn, task_results, pks),
        events=_count(conn, state_events, pks),
        log_paths=tuple(sorted(set(logs))),
        references=tuple(sorted(set(references))),
    )


def delete_runs(conn: Connection, pks: Sequence[int], *, protection: Protection | None = None) -> Removed:
    """Delete the runs among ``pks`` that are finished and not protected, with their task
    instances, tries, results and events. Returns what went, with the log files and the
    offloaded objects (only those no remaining row references) to remove after commit."""
    protection = protection if protection is not None else protected_runs(conn)
    refs = [r for r in _lock_finished(conn, pks) if r.pk not in protection]
    if not refs:
        return Removed()
    doomed = [r.pk for r in refs]
    logs, references = _files(conn, doomed)
    counts = dict.fromkeys((task_results, task_tries, state_events, task_instances), 0)
    for part in chunks(doomed, _SMALL_CHUNK):
        for table in counts:
            counts[table] += conn.execute(sa.delete(table).where(table.c.run_pk.in_(part))).rowcount
        conn.execute(sa.delete(runs).where(runs.c.id.in_(part)))
    distinct = sorted(set(references))
    still: set[str] = set()
    for refs_part in chunks(distinct, _SMALL_CHUNK):
        still |= set(
            conn.execute(sa.select(task_results.c.reference).where(task_results.c.reference.in_(refs_part))).scalars()
        )
    return Removed(
        runs=tuple(refs),
        task_instances=counts[task_instances],
        tries=counts[task_tries],
        results=counts[task_results],
        events=counts[state_events],
        log_paths=tuple(sorted(set(logs))),
        references=tuple(r for r in distinct if r not in still),
    )


def stale_import_errors(conn: Connection, is_stale: Callable[[str], bool]) -> list[int]:
    """Ids of the import errors whose file ``is_stale`` (the caller's check: this module does no
    file I/O) says is gone."""
    rows = conn.execute(sa.select(import_errors.c.id, import_errors.c.fileloc)).all()
    return [r.id for r in rows if is_stale(r.fileloc)]


def delete_import_errors(conn: Connection, ids: Sequence[int]) -> int:
    deleted = 0
    for part in chunks(list(ids), _SMALL_CHUNK):
        deleted += conn.execute(sa.delete(import_errors).where(import_errors.c.id.in_(part))).rowcount
    return deleted


# --- messages --------------------------------------------------------------------------------
def _old_messages(
    receipts_before: dt.datetime, letters_before: dt.datetime, flow_id: str | None
) -> tuple[list[Any], list[Any]]:
    mr, dl = message_receipts, dead_letters
    receipts: list[Any] = [mr.c.received_at < receipts_before]
    letters: list[Any] = [dl.c.received_at < letters_before]
    if flow_id is not None:
        receipts.append(mr.c.flow_id == flow_id)
        letters.append(dl.c.flow_id == flow_id)
    return receipts, letters


def old_messages(
    conn: Connection,
    *,
    receipts_before: dt.datetime,
    letters_before: dt.datetime,
    flow_id: str | None = None,
    limit: int,
) -> tuple[list[tuple[str, str, str]], list[int]]:
    """The keys of the message receipts received before ``receipts_before`` and the ids of the
    dead letters received before ``letters_before`` (of ``flow_id`` only, if given; oldest
    first, at most ``limit`` of each)."""
    mr, dl = message_receipts, dead_letters
    on_receipts, on_letters = _old_messages(receipts_before, letters_before, flow_id)
    receipts = sa.select(mr.c.flow_id, mr.c.source, mr.c.message_id).where(*on_receipts)
    letters = sa.select(dl.c.id).where(*on_letters)
    keys = conn.execute(receipts.order_by(mr.c.received_at).limit(limit))
    ids = conn.execute(letters.order_by(dl.c.received_at, dl.c.id).limit(limit))
    return [(r.flow_id, r.source, r.message_id) for r in keys], [int(r.id) for r in ids]


def count_old_messages(
    conn: Connection, *, receipts_before: dt.datetime, letters_before: dt.datetime, flow_id: str | None = None
) -> tuple[int, int]:
    """How many receipts and dead letters ``old_messages`` would find, without a limit."""
    on_receipts, on_letters = _old_messages(receipts_before, letters_before, flow_id)
    receipts = conn.execute(sa.select(sa.func.count()).select_from(message_receipts).where(*on_receipts))
    letters = conn.execute(sa.select(sa.func.count()).select_from(dead_letters).where(*on_letters))
    return int(receipts.scalar_one()), int(letters.scalar_one())


def delete_messages(
    conn: Connection, receipts: Sequence[tuple[str, str, str]], letters: Sequence[int]
) -> tuple[int, int]:
    """Delete the given receipts and dead letters; returns how many of each went."""
    mr = message_receipts
    key = sa.tuple_(mr.c.flow_id, mr.c.source, mr.c.message_id)
    gone_receipts = gone_letters = 0
    for part in chunks(list(receipts), _SMALL_CHUNK):
        gone_receipts += conn.execute(sa.delete(mr).where(key.in_(part))).rowcount
    for ids in chunks(list(letters), _SMALL_CHUNK):
        gone_letters += conn.execute(sa.delete(dead_letters).where(dead_letters.c.id.in_(ids))).rowcount
    return gone_receipts, gone_letters
