"""Flows as the parser last saw them, their graph versions, pause state and next run.

The parsing process upserts each flow it finds in a file (``upsert_flow``) and then marks the
file's other flows inactive (``deactivate_missing``). The scheduler reads flows and their
serialized graphs from here and never imports code (ADR 0001).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, Row

from ductwork.core.graph import FlowGraph
from ductwork.errors import NotFoundError
from ductwork.store.records import FlowRecord, FlowVersionRecord
from ductwork.store.repo import _nodes
from ductwork.store.repo._util import chunks
from ductwork.store.tables import flow_versions, flows
from ductwork.store.types import utcnow
from ductwork.store.upsert import upsert

_RECORD_COLUMNS = [c for c in flows.c if c.name != "graph"]


def _record(row: Row[Any]) -> FlowRecord:
    m = row._mapping
    return FlowRecord(
        flow_id=m["flow_id"],
        fileloc=m["fileloc"],
        version_hash=m["version_hash"],
        schedule=m["schedule"],
        timezone=m["timezone"],
        is_paused=bool(m["is_paused"]),
        is_active=bool(m["is_active"]),
        owner=m["owner"],
        tags=tuple(m["tags"]),
        description=m["description"],
        style=m["style"],
        max_active_runs=m["max_active_runs"],
        next_logical_date=m["next_logical_date"],
        next_interval_start=m["next_interval_start"],
        next_interval_end=m["next_interval_end"],
        last_parsed_at=m["last_parsed_at"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


def _definition(graph: FlowGraph, fileloc: str | None) -> dict[str, Any]:
    """The columns that come from the graph itself (overwritten on every parse)."""
    meta = graph.meta
    data = _nodes.graph_json(graph)  # also what the hash is of: every node serialized once, not twice
    return {
        "fileloc": fileloc if fileloc is not None else meta.fileloc,
        "graph": data,
        "version_hash": graph.version_hash(data),
        "schedule": meta.schedule,
        "timezone": meta.timezone,
        "owner": meta.owner,
        "tags": list(meta.tags),
        "description": meta.description,
        "style": meta.style,
        "max_active_runs": meta.max_active_runs,
    }


def upsert_flow(
    conn: Connection,
    graph: FlowGraph,
    *,
    fileloc: str | None = None,
    now: dt.datetime | None = None,
    code: Mapping[str, Any] | None = None,
) -> FlowRecord:
    """Record ``graph`` as the current definition of its flow (``record_flow``), and return the flow."""
    record_flow(conn, graph, fileloc=fileloc, now=now, code=code)
    record = get_flow(conn, graph.flow_id)
    assert record is not None
    return record


def record_flow(
    conn: Connection,
    graph: FlowGraph,
    *,
    fileloc: str | None = None,
    now: dt.datetime | None = None,
    code: Mapping[str, Any] | None = None,
) -> None:
    """Record ``graph`` as the current definition of its flow.

    A new flow starts paused iff ``meta.paused_on_creation``; an existing flow keeps its pause
    state and next-run fields, becomes active again, and gets a ``flow_versions`` row when its
    graph's version hash is one not seen before. ``fileloc`` defaults to ``meta.fileloc``.
    """
    now = now or utcnow()
    values = _definition(graph, fileloc)
    if code is not None:  # without it, the code recorded by the last parse stays
        values["code"] = dict(code)
    existing = conn.execute(
        sa.select(flows.c.version_hash).where(flows.c.flow_id == graph.flow_id)
    ).scalar_one_or_none()
    if existing is None:
        _insert_new(conn, [_new_row(graph, values, now)])
    else:
        conn.execute(
            sa.update(flows)
            .where(flows.c.flow_id == graph.flow_id)
            .values(is_active=True, last_parsed_at=now, updated_at=now, **values)
        )
    if existing != values["version_hash"]:
        _add_version(conn, graph.flow_id, values["version_hash"], values["graph"], now)
    if existing != values["version_hash"]:
        from ductwork.store.repo import assets as asset_repo

        asset_repo.sync_refs(conn, graph)  # which assets the flow is scheduled on, writes and reads


def record_files(
    conn: Connection,
    parsed: Mapping[str, Sequence[tuple[FlowGraph, Mapping[str, Any] | None]]],
    present: Mapping[str, Iterable[str]],
    *,
    now: dt.datetime | None = None,
) -> None:
    """What ``record_flow`` and ``deactivate_missing`` do for many files at once, in a few
    statements whatever their number (a scheduler starting on a folder of 100 files).

    ``parsed`` maps each file to the flows to record from it (graph, code); ``present`` maps
    each file to every flow id it defines now (its other active flows are marked inactive;
    a file that is gone maps to none)."""
    from ductwork.store.repo import assets as asset_repo

    now = now or utcnow()
    entries = [(file, graph, code) for file, graphs in parsed.items() for graph, code in graphs]
    existing: dict[str, str] = {}
    for part in chunks([graph.flow_id for _, graph, _ in entries]):
        rows = conn.execute(sa.select(flows.c.flow_id, flows.c.version_hash).where(flows.c.flow_id.in_(list(part))))
        existing.update((row.flow_id, row.version_hash) for row in rows)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    changed: list[tuple[FlowGraph, dict[str, Any]]] = []
    for file, graph, code in entries:
        values = _definition(graph, file)
        if code is not None:
            values["code"] = dict(code)
        if graph.flow_id not in existing:
            inserts.append(_new_row(graph, values, now))
        else:
            updates.append(values | {"flow_id": graph.flow_id})
        if existing.get(graph.flow_id) != values["version_hash"]:
            changed.append((graph, values))
    if inserts:
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in inserts:
            by_shape.setdefault(tuple(sorted(row)), []).append(row)
        for shaped in by_shape.values():
            _insert_new(conn, shaped)
    for row in updates:  # few on a start (the flows are new), one per changed flow after
        flow_id = row.pop("flow_id")
        conn.execute(
            sa.update(flows)
            .where(flows.c.flow_id == flow_id)
            .values(is_active=True, last_parsed_at=now, updated_at=now, **row)
        )
    if changed:
        seen: set[tuple[str, str]] = set()
        for part in chunks([graph.flow_id for graph, _ in changed]):
            rows = conn.execute(
                sa.select(flow_versions.c.flow_id, flow_versions.c.version_hash).where(
                    flow_versions.c.flow_id.in_(list(part))
                )
            )
            seen.update((row.flow_id, row.version_hash) for row in rows)
        versions = [
            {"flow_id": graph.flow_id, "version_hash": v["version_hash"], "graph": v["graph"], "created_at": now}
            for graph, v in changed
            if (graph.flow_id, v["version_hash"]) not in seen
        ]
        upsert(conn, flow_versions, versions, keys=("flow_id", "version_hash"), update=())
        asset_repo.sync_refs_many(conn, [graph for graph, _ in changed])
    _deactivate_missing_many(conn, present, now)


def _deactivate_missing_many(conn: Connection, present: Mapping[str, Iterable[str]], now: dt.datetime) -> None:
    keep = {file: set(ids) for file, ids in present.items()}
    gone: list[str] = []
    for part in chunks(sorted(keep)):
        rows = conn.execute(
            sa.select(flows.c.flow_id, flows.c.fileloc).where(
                flows.c.fileloc.in_(list(part)), flows.c.is_active == sa.true()
            )
        )
        gone += [row.flow_id for row in rows if row.flow_id not in keep[row.fileloc]]
    for part in chunks(sorted(gone)):
        conn.execute(sa.update(flows).where(flows.c.flow_id.in_(list(part))).values(is_active=False, updated_at=now))


def _new_row(graph: FlowGraph, values: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    return {
        "flow_id": graph.flow_id,
        "is_paused": graph.meta.paused_on_creation,
        "is_active": True,
        "last_parsed_at": now,
        "created_at": now,
        "updated_at": now,
        **values,
    }


_KEPT_BY_AN_EXISTING_ROW = ("flow_id", "is_paused", "created_at")


def _insert_new(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows of flows not recorded yet (all of one shape). Another writer (the scheduler's
    parse, a command) may record the same new flow at the same moment: then its row stays,
    with its pause state and creation time, and takes this definition, as an update would."""
    update = tuple(c for c in rows[0] if c not in _KEPT_BY_AN_EXISTING_ROW)
    upsert(conn, flows, rows, keys=("flow_id",), update=update)


def _add_version(conn: Connection, flow_id: str, version_hash: str, graph: Any, now: dt.datetime) -> None:
    """The version's row, unless it exists (or another writer adds it at the same moment)."""
    row = {"flow_id": flow_id, "version_hash": version_hash, "graph": graph, "created_at": now}
    upsert(conn, flow_versions, [row], keys=("flow_id", "version_hash"), update=())


def get_flow(conn: Connection, flow_id: str) -> FlowRecord | None:
    row = conn.execute(sa.select(*_RECORD_COLUMNS).where(flows.c.flow_id == flow_id)).first()
    return _record(row) if row is not None else None


def get_flow_graph(conn: Connection, flow_id: str, version_hash: str | None = None) -> FlowGraph | None:
    """The flow's current graph, or the graph of an earlier version by its hash."""
    if version_hash is None:
        stmt = sa.select(flows.c.graph).where(flows.c.flow_id == flow_id)
    else:
        stmt = sa.select(flow_versions.c.graph).where(
            flow_versions.c.flow_id == flow_id, flow_versions.c.version_hash == version_hash
        )
    data = conn.execute(stmt).scalar_one_or_none()
    return FlowGraph.from_dict(data) if data is not None else None


def get_flow_graph_data(conn: Connection, flow_id: str) -> dict[str, Any] | None:
    """The flow's current graph as the plain data it is stored as (``FlowGraph.to_dict``), for
    readers that need a few fields of every node rather than 100,000 ``NodeSpec`` objects."""
    data = conn.execute(sa.select(flows.c.graph).where(flows.c.flow_id == flow_id)).scalar_one_or_none()
    return dict(data) if data is not None else None


def list_flows(
    conn: Connection,
    *,
    active: bool | None = True,
    paused: bool | None = None,
    tag: str | None = None,
    fileloc: str | None = None,
) -> list[FlowRecord]:
    """Flows ordered by id. ``None`` for a filter means "either"; by default only active flows."""
    stmt = sa.select(*_RECORD_COLUMNS).order_by(flows.c.flow_id)
    if active is not None:
        stmt = stmt.where(flows.c.is_active == active)
    if paused is not None:
        stmt = stmt.where(flows.c.is_paused == paused)
    if fileloc is not None:
        stmt = stmt.where(flows.c.fileloc == fileloc)
    records = [_record(row) for row in conn.execute(stmt)]
    if tag is not None:  # tags are a JSON list; few flows, so filter here rather than per dialect
        records = [r for r in records if tag in r.tags]
    return records


def list_flow_versions(conn: Connection, flow_id: str) -> list[FlowVersionRecord]:
    """The graph versions recorded for a flow, oldest first."""
    stmt = (
        sa.select(flow_versions.c.flow_id, flow_versions.c.version_hash, flow_versions.c.created_at)
        .where(flow_versions.c.flow_id == flow_id)
        .order_by(flow_versions.c.created_at, flow_versions.c.version_hash)
    )
    return [FlowVersionRecord(r.flow_id, r.version_hash, r.created_at) for r in conn.execute(stmt)]


def set_paused(conn: Connection, flow_id: str, paused: bool, *, now: dt.datetime | None = None) -> None:
    """Pause or unpause a flow; raises ``NotFoundError`` for an unknown flow."""
    _update_one(conn, flow_id, is_paused=paused, updated_at=now or utcnow())


def set_next_run(
    conn: Connection,
    flow_id: str,
    *,
    logical_date: dt.datetime | None,
    interval_start: dt.datetime | None,
    interval_end: dt.datetime | None,
    now: dt.datetime | None = None,
) -> None:
    """Record when the scheduler should create the flow's next run (``None`` for never)."""
    _update_one(
        conn,
        flow_id,
        next_logical_date=logical_date,
        next_interval_start=interval_start,
        next_interval_end=interval_end,
        updated_at=now or utcnow(),
    )


def _update_one(conn: Connection, flow_id: str, **values: Any) -> None:
    result = conn.execute(sa.update(flows).where(flows.c.flow_id == flow_id).values(**values))
    if result.rowcount == 0:
        raise NotFoundError(f"no flow {flow_id!r} in the database")


def deactivate_missing(
    conn: Connection, fileloc: str, present: Iterable[str], *, now: dt.datetime | None = None
) -> list[str]:
    """Mark inactive the active flows of ``fileloc`` whose ids are not in ``present`` (the file no
    longer defines them, or no longer imports). Returns the ids marked, sorted."""
    keep = set(present)
    rows = conn.execute(
        sa.select(flows.c.flow_id).where(flows.c.fileloc == fileloc, flows.c.is_active == sa.true())
    ).scalars()
    gone: Sequence[str] = sorted(flow_id for flow_id in rows if flow_id not in keep)
    if gone:
        conn.execute(
            sa.update(flows).where(flows.c.flow_id.in_(gone)).values(is_active=False, updated_at=now or utcnow())
        )
    return list(gone)


def code_and_file(conn: Connection, flow_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """The code the flow was last recorded from (``engine.code_info.flow_code``) and its file."""
    row = conn.execute(sa.select(flows.c.code, flows.c.fileloc).where(flows.c.flow_id == flow_id)).first()
    if row is None:
        return None, None
    return (dict(row.code) if row.code else None), row.fileloc
