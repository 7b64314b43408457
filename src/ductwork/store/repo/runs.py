"""Runs and their recorded graphs.

A run records the graph it was created from: its ``FlowMeta`` and groups on the run row
(``graph_meta``), and one task-instance row per node, inserted with one executemany. History
therefore stays true when the flow's code changes, and the scheduler can resume a run from the
database alone (``load_run_graph``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Connection, Row
from sqlalchemy.exc import IntegrityError

from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec, topological
from ductwork.core.states import RunState, TaskState
from ductwork.errors import DefinitionError, NotFoundError
from ductwork.store.errors import RunExistsError
from ductwork.store.records import Page, RunGraph, RunRecord
from ductwork.store.repo import _nodes
from ductwork.store.repo._util import chunks, inserted_pk
from ductwork.store.repo.events import NewStateEvent, add_state_events
from ductwork.store.tables import IN_PROCESS_OWNER, flows, runs, task_instances
from ductwork.store.types import ID_LENGTH, utcnow

ACTIVE_STATES = (RunState.QUEUED, RunState.RUNNING)
_RECORD_COLUMNS = [c for c in runs.c if c.name != "graph_meta"]


def _record(row: Row[Any]) -> RunRecord:
    m = row._mapping
    return RunRecord(
        pk=m["id"],
        flow_id=m["flow_id"],
        run_id=m["run_id"],
        run_type=m["run_type"],
        state=RunState(m["state"]),
        logical_date=m["logical_date"],
        data_interval_start=m["data_interval_start"],
        data_interval_end=m["data_interval_end"],
        params=m["params"],
        conf=m["conf"],
        version_hash=m["version_hash"],
        queued_at=m["queued_at"],
        start_date=m["start_date"],
        end_date=m["end_date"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        note=m["note"],
        revision=m["revision"],
        graph_pending=bool(m["graph_pending"]),
        owner=m.get("owner"),
        triggered_by=m["triggered_by"],
        code=m["code"],
    )


def create_run(
    conn: Connection,
    graph: FlowGraph,
    *,
    run_id: str,
    logical_date: dt.datetime,
    data_interval: tuple[dt.datetime, dt.datetime] | None = None,
    run_type: str = "manual",
    params: Mapping[str, Any] | None = None,
    conf: Mapping[str, Any] | None = None,
    states: Mapping[str, TaskState] | None = None,
    tries: Mapping[str, int] | None = None,
    state: RunState = RunState.QUEUED,
    note: str | None = None,
    graph_pending: bool = False,
    now: dt.datetime | None = None,
    triggered_by: Mapping[str, Any] | None = None,
    code: Mapping[str, Any] | None = None,
    owner: int | None = None,
) -> RunRecord:
    """Create a run of ``graph.flow_id`` and one task instance per node, in bulk.

    ``owner``: ``tables.IN_PROCESS_OWNER`` for a run its command executes itself.

    ``code`` (content hashes of the flow's files, git commit) defaults to the code the flow was
    last parsed from, so every run says which code it was created from.

    With ``graph_pending`` the graph given is only the flow's description (no nodes are
    written): the scheduler's parsing process builds the run's own graph (``set_run_graph``).

    ``states`` gives initial task states (for example class tasks already complete); the others
    start as ``none``. ``data_interval`` defaults to an empty interval at ``logical_date``.
    Raises ``RunExistsError`` when the flow already has a run with this ``run_id``.
    """
    now = now or utcnow()
    flow_id = graph.flow_id
    _check_task_ids(flow_id, graph.nodes)
    if get_run(conn, flow_id, run_id) is not None:
        raise _exists(flow_id, run_id)
    start, end = data_interval or (logical_date, logical_date)
    values = {
        "flow_id": flow_id,
        "run_id": run_id,
        "run_type": run_type,
        "state": state.value,
        "logical_date": logical_date,
        "data_interval_start": start,
        "data_interval_end": end,
        "params": dict(params or {}),
        "conf": dict(conf or {}),
        "graph_meta": {"meta": graph.meta.to_dict(), "groups": {k: dict(v) for k, v in graph.groups.items()}},
        "version_hash": graph.version_hash(),
        "queued_at": now,
        "start_date": now if state == RunState.RUNNING else None,
        "end_date": None,
        "created_at": now,
        "updated_at": now,
        "note": note,
        "graph_pending": graph_pending,
        "triggered_by": dict(triggered_by) if triggered_by else None,
        "code": dict(code) if code is not None else _flow_code(conn, flow_id),
        "owner": owner,
    }
    try:
        with conn.begin_nested():  # a lost race on the unique key must not poison the caller's transaction
            run_pk = inserted_pk(conn.execute(sa.insert(runs).values(values)))
    except IntegrityError:
        raise _exists(flow_id, run_id) from None
    if graph_pending:
        record = get_run_by_pk(conn, run_pk)
        assert record is not None
        return record
    states, tries = states or {}, tries or {}
    rows = [
        _nodes.new_row(run_pk, i, node, states.get(node.task_id, TaskState.NONE), tries.get(node.task_id, 0), now, data)
        for i, (node, data) in enumerate(zip(graph.nodes.values(), graph.node_dicts(), strict=True))
    ]
    _nodes.insert_nodes(conn, rows)
    record = get_run_by_pk(conn, run_pk)
    assert record is not None
    return record


def _flow_code(conn: Connection, flow_id: str) -> Any:
    return conn.execute(sa.select(flows.c.code).where(flows.c.flow_id == flow_id)).scalar_one_or_none()


def _exists(flow_id: str, run_id: str) -> RunExistsError:
    return RunExistsError(
        f"flow {flow_id!r} already has a run with run id {run_id!r}; run ids are unique within a flow, "
        "so choose another run id (or clear the existing run to run it again)"
    )


def get_run(conn: Connection, flow_id: str, run_id: str) -> RunRecord | None:
    row = conn.execute(sa.select(*_RECORD_COLUMNS).where(runs.c.flow_id == flow_id, runs.c.run_id == run_id)).first()
    return _record(row) if row is not None else None


def get_run_by_pk(conn: Connection, run_pk: int) -> RunRecord | None:
    row = conn.execute(sa.select(*_RECORD_COLUMNS).where(runs.c.id == run_pk)).first()
    return _record(row) if row is not None else None


def split_run_key(key: str) -> tuple[str, str]:
    """``flow_id/run_id`` as its two parts (flow ids cannot contain ``/``; run ids may)."""
    flow_id, sep, run_id = key.partition("/")
    if not sep:
        raise NotFoundError(f"{key!r} is not a run key; expected 'flow_id/run_id'")
    return flow_id, run_id


def get_run_by_key(conn: Connection, key: str) -> RunRecord | None:
    return get_run(conn, *split_run_key(key))


def run_pks(conn: Connection, keys: Iterable[str]) -> dict[str, int]:
    """Primary keys of the runs with these engine keys (``flow_id/run_id``); unknown keys are left out."""
    pairs = sorted({split_run_key(key) for key in keys})
    found: dict[str, int] = {}
    for part in chunks(pairs):
        stmt = sa.select(runs.c.id, runs.c.flow_id, runs.c.run_id).where(
            sa.tuple_(runs.c.flow_id, runs.c.run_id).in_(list(part))
        )
        for row in conn.execute(stmt):
            found[f"{row.flow_id}/{row.run_id}"] = row.id
    return found


def _filters(
    flow_id: str | None,
    states: Iterable[RunState] | None,
    run_types: Iterable[str] | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = []
    if flow_id is not None:
        where.append(runs.c.flow_id == flow_id)
    if states is not None:
        where.append(runs.c.state.in_([RunState(s).value for s in states]))
    if run_types is not None:
        where.append(runs.c.run_type.in_(list(run_types)))
    if since is not None:
        where.append(runs.c.logical_date >= since)
    if until is not None:
        where.append(runs.c.logical_date < until)
    return where


def list_runs(
    conn: Connection,
    *,
    flow_id: str | None = None,
    states: Iterable[RunState] | None = None,
    run_types: Iterable[str] | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 50,
    offset: int = 0,
    newest_first: bool = True,
) -> Page[RunRecord]:
    """A page of runs matching every filter given; the logical date range is ``[since, until)``.

    Ordered by logical date (then creation), newest first unless ``newest_first`` is false.
    """
    states = list(states) if states is not None else None
    where = _filters(flow_id, states, run_types, since, until)
    total = conn.execute(sa.select(sa.func.count()).select_from(runs).where(*where)).scalar_one()
    order = [runs.c.logical_date, runs.c.id]
    stmt = (
        sa.select(*_RECORD_COLUMNS)
        .where(*where)
        .order_by(*(c.desc() for c in order) if newest_first else order)
        .limit(limit)
        .offset(offset)
    )
    items = tuple(_record(row) for row in conn.execute(stmt))
    return Page(items=items, total=total, limit=limit, offset=offset)


def active_runs(conn: Connection, *, flow_id: str | None = None) -> list[RunRecord]:
    """Queued and running runs, oldest first: the scheduler's work list."""
    where = _filters(flow_id, ACTIVE_STATES, None, None, None)
    stmt = sa.select(*_RECORD_COLUMNS).where(*where).order_by(runs.c.id)
    return [_record(row) for row in conn.execute(stmt)]


def set_run_state(
    conn: Connection,
    run_pk: int,
    state: RunState,
    *,
    at: dt.datetime | None = None,
    expected: Iterable[RunState] | None = None,
    reason: str = "",
) -> bool:
    """Move a run to ``state`` and keep its dates right; records the change as an event.

    Running sets the start date (first time only); success and failed set the end date; queued
    (a run cleared to run again) clears the end date. With ``expected``, nothing happens unless
    the run is in one of those states. Returns whether the run changed. Raises
    ``NotFoundError`` for an unknown run.
    """
    at = at or utcnow()
    current = conn.execute(sa.select(runs.c.state).where(runs.c.id == run_pk)).scalar_one_or_none()
    if current is None:
        raise NotFoundError(f"no run with primary key {run_pk}")
    allowed = [RunState(s).value for s in expected] if expected is not None else None
    if current == state.value or (allowed is not None and current not in allowed):
        return False
    values: dict[str, Any] = {"state": state.value, "updated_at": at}
    if state == RunState.RUNNING:
        values["start_date"] = sa.func.coalesce(runs.c.start_date, at)
        values["end_date"] = None
    elif state.is_terminal:
        values["end_date"] = at
    else:
        values["end_date"] = None
        values["queued_at"] = at
    result = conn.execute(sa.update(runs).where(runs.c.id == run_pk, runs.c.state == current).values(values))
    if result.rowcount != 1:
        return False
    add_state_events(conn, [NewStateEvent(run_pk, None, current, state.value, reason, 0, at)])
    return True


def hand_to_schedulers(conn: Connection, run_pk: int) -> None:
    """A run a command executed in its own process, queued again (its tasks cleared after it
    ended): it becomes a scheduler's to run, as any other."""
    conn.execute(sa.update(runs).where(runs.c.id == run_pk, runs.c.owner == IN_PROCESS_OWNER).values(owner=None))


def set_run_note(conn: Connection, run_pk: int, note: str | None, *, now: dt.datetime | None = None) -> None:
    result = conn.execute(sa.update(runs).where(runs.c.id == run_pk).values(note=note, updated_at=now or utcnow()))
    if result.rowcount == 0:
        raise NotFoundError(f"no run with primary key {run_pk}")


def load_run_graph(conn: Connection, run_pk: int) -> RunGraph:
    """The run, its graph as recorded (grown by any dynamic dependencies), its task states and
    the tries used per task: everything the engine needs to resume it."""
    row = conn.execute(sa.select(runs).where(runs.c.id == run_pk)).first()
    if row is None:
        raise NotFoundError(f"no run with primary key {run_pk}")
    ti = task_instances
    rows = conn.execute(
        sa.select(ti.c.task_id, ti.c.node, ti.c.upstream, ti.c.state, ti.c.try_number, ti.c.max_tries, ti.c.next_try_at)
        .where(ti.c.run_pk == run_pk)
        .order_by(ti.c.ordinal)
    ).all()
    nodes: dict[str, NodeSpec] = {r.task_id: _nodes.node_from_row(r.task_id, r.node, r.upstream) for r in rows}
    meta = FlowMeta.from_dict(row.graph_meta["meta"])
    graph = FlowGraph(meta, topological(nodes, where=meta.flow_id), row.graph_meta.get("groups", {}))
    states = {r.task_id: TaskState(r.state) for r in rows}
    tries = {r.task_id: r.try_number for r in rows}
    max_tries = {r.task_id: r.max_tries for r in rows if r.max_tries is not None}
    due = {r.task_id: r.next_try_at for r in rows if r.next_try_at is not None}
    return RunGraph(run=_record(row), graph=graph, states=states, tries=tries, max_tries=max_tries, next_try_at=due)


def set_run_graph(
    conn: Connection,
    run_pk: int,
    graph: FlowGraph,
    *,
    states: Mapping[str, TaskState] | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Give a run created with ``graph_pending`` its graph: task instances and metadata. False,
    and nothing written, when it has one already: several schedulers build the graphs of new
    runs, and the second to finish wrote the same task instances again (a unique violation
    that ended that scheduler)."""
    now = now or utcnow()
    updated = conn.execute(
        sa.update(runs)
        .where(runs.c.id == run_pk, runs.c.graph_pending == sa.true())
        .values(
            graph_meta={"meta": graph.meta.to_dict(), "groups": {k: dict(v) for k, v in graph.groups.items()}},
            version_hash=graph.version_hash(),
            graph_pending=False,
            updated_at=now,
        )
    )
    if updated.rowcount != 1:
        return False
    states = states or {}
    rows = [
        _nodes.new_row(run_pk, i, node, states.get(node.task_id, TaskState.NONE), 0, now)
        for i, node in enumerate(graph.nodes.values())
    ]
    _nodes.insert_nodes(conn, rows)
    return True


def lock_runs(conn: Connection, run_pks: Iterable[int]) -> dict[int, tuple[int | None, int]]:
    """Lock run rows until the transaction ends (in primary-key order, so that two writers never
    wait on each other in a circle) and return each one's (owner, revision).

    Whoever changes a run that a scheduler drives (clear, mark, cancel) and the scheduler's event
    sink both take this lock first: a change from outside and a scheduler step then never
    interleave, and the sink sees the revision the change moved (SQLite needs no row lock: its
    write transactions already run one at a time)."""
    pks = sorted(set(run_pks))
    if len(pks) == 1:  # a step of one run, most of the time: its SQL as the driver takes it
        cursor = conn.connection.cursor()  # the transaction's own connection
        try:
            cursor.execute(_lock_one_sql(conn), (pks[0],))
            row = cursor.fetchone()
        finally:
            cursor.close()
        return {} if row is None else {int(row[0]): (row[1], int(row[2]))}
    out: dict[int, tuple[int | None, int]] = {}
    for part in chunks(pks):
        stmt = sa.select(runs.c.id, runs.c.owner, runs.c.revision).where(runs.c.id.in_(part)).with_for_update()
        out.update((row.id, (row.owner, row.revision)) for row in conn.execute(stmt))
    return out


_LOCK_ONE: dict[str, str] = {}


def _lock_one_sql(conn: Connection) -> str:
    """``lock_runs``'s statement for one run, in the driver's own words: built by SQLAlchemy
    at each step it cost more than a scheduler step's other writes (0.17 ms against 0.06)."""
    dialect = conn.dialect
    sql = _LOCK_ONE.get(dialect.name)
    if sql is None:
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        lock = "" if dialect.name == "sqlite" else " FOR UPDATE"
        sql = _LOCK_ONE[dialect.name] = f"SELECT id, owner, revision FROM runs WHERE id = {mark}{lock}"
    return sql


def bump_revision(conn: Connection, run_pk: int, *, now: dt.datetime | None = None) -> None:
    """Tell a running scheduler that this run changed outside it and must be reloaded."""
    conn.execute(
        sa.update(runs).where(runs.c.id == run_pk).values(revision=runs.c.revision + 1, updated_at=now or utcnow())
    )


def add_nodes(conn: Connection, run_pk: int, nodes: Iterable[NodeSpec], *, now: dt.datetime | None = None) -> list[str]:
    """Grow a run's graph (dynamic dependencies): insert the nodes it lacks, in state ``none``,
    and update the definition (upstream list) of those it has. Returns the ids inserted."""
    record = get_run_by_pk(conn, run_pk)
    if record is None:
        raise NotFoundError(f"no run with primary key {run_pk}")
    nodes = list(nodes)
    _check_task_ids(record.flow_id, {n.task_id: n for n in nodes})
    return _nodes.grow(conn, run_pk, nodes, now or utcnow())


def _check_task_ids(flow_id: str, nodes: Mapping[str, Any]) -> None:
    """A task id longer than the database keeps is refused by name (PostgreSQL and MariaDB
    raised a page of SQL error for it; SQLite kept it): a Luigi task whose namespace and class
    name are long, say."""
    for task_id in nodes:
        if len(task_id) > ID_LENGTH:
            raise DefinitionError(
                f"flow {flow_id!r}: task id {task_id[:60]}... is {len(task_id)} characters long; the metadata "
                f"database keeps task ids of up to {ID_LENGTH}: shorten its name (a class task: its namespace "
                "and class name, or its first parameter values)"
            )
