"""Assets, who mentions them, their update events, and the updates waiting for consumer flows.

``sync_refs`` runs with every parse of a flow (from ``flows.upsert_flow``); ``record_events``
runs in the scheduler's step transaction, so a task's success and the asset events it made
commit together, and queues each event for every active flow scheduled on that asset; the
scheduler then turns a flow's queued events into a run when its condition holds, consuming
them in the run's own transaction (``consume``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.core.assets import condition_from_dict
from ductwork.core.graph import FlowGraph
from ductwork.store.repo._util import chunks
from ductwork.store.tables import asset_events, asset_queue, asset_refs, asset_run_events, assets, flows, runs
from ductwork.store.types import utcnow

SCHEDULE = "schedule"
OUTLET = "outlet"
INLET = "inlet"


@dataclass(frozen=True)
class NewAssetEvent:
    uri: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    flow_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    at: dt.datetime | None = None


@dataclass(frozen=True)
class AssetEventRecord:
    id: int
    uri: str
    extra: Mapping[str, Any]
    flow_id: str | None
    run_id: str | None
    task_id: str | None
    created_at: dt.datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "uri": self.uri,
            "extra": dict(self.extra),
            "flow_id": self.flow_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class AssetRecord:
    id: int
    uri: str
    extra: Mapping[str, Any]
    created_at: dt.datetime
    last_event_at: dt.datetime | None = None
    events: int = 0


@dataclass(frozen=True)
class AssetRef:
    flow_id: str
    uri: str
    kind: str
    task_id: str


def graph_refs(graph: FlowGraph) -> list[tuple[str, str, str]]:
    """``(uri, kind, task_id)`` for every asset a flow's graph mentions."""
    out: list[tuple[str, str, str]] = []
    if graph.meta.assets:
        out += [(uri, SCHEDULE, "") for uri in condition_from_dict(graph.meta.assets).uris()]
    for node in graph.nodes.values():
        out += [(uri, OUTLET, node.task_id) for uri in node.extra.get("outlets", ())]
        out += [(uri, INLET, node.task_id) for uri in node.extra.get("inlets", ())]
    return list(dict.fromkeys(out))


def ensure_assets(conn: Connection, uris: Iterable[str], *, now: dt.datetime | None = None) -> dict[str, int]:
    """Ids of these assets, creating the ones not seen before."""
    wanted = sorted(set(uris))
    found = _asset_ids(conn, wanted)
    missing = [u for u in wanted if u not in found]
    if missing:
        now = now or utcnow()
        for uri in missing:
            try:
                with conn.begin_nested():  # another writer may create it at the same moment
                    conn.execute(sa.insert(assets).values(uri=uri, extra={}, created_at=now, updated_at=now))
            except sa.exc.IntegrityError:
                pass
        found.update(_asset_ids(conn, missing))
    return found


def _asset_ids(conn: Connection, uris: Sequence[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for part in chunks(uris):
        stmt = sa.select(assets.c.uri, assets.c.id).where(assets.c.uri.in_(list(part)))
        found.update((row.uri, int(row.id)) for row in conn.execute(stmt))
    return found


def sync_refs(conn: Connection, graph: FlowGraph, *, extras: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Replace the flow's asset references with those of ``graph``."""
    refs = graph_refs(graph)
    ids = ensure_assets(conn, [uri for uri, _, _ in refs])
    conn.execute(sa.delete(asset_refs).where(asset_refs.c.flow_id == graph.flow_id))
    if refs:
        conn.execute(
            sa.insert(asset_refs),
            [{"flow_id": graph.flow_id, "asset_id": ids[u], "kind": k, "task_id": t} for u, k, t in refs],
        )


def sync_refs_many(conn: Connection, graphs: Sequence[FlowGraph]) -> None:
    """``sync_refs`` for many flows, in a few statements."""
    if not graphs:
        return
    refs = {graph.flow_id: graph_refs(graph) for graph in graphs}
    ids = ensure_assets(conn, [uri for flow_refs in refs.values() for uri, _, _ in flow_refs])
    for part in chunks(sorted(refs)):
        conn.execute(sa.delete(asset_refs).where(asset_refs.c.flow_id.in_(list(part))))
    rows = [
        {"flow_id": flow_id, "asset_id": ids[u], "kind": k, "task_id": t}
        for flow_id, flow_refs in refs.items()
        for u, k, t in flow_refs
    ]
    if rows:
        conn.execute(sa.insert(asset_refs), rows)


def record_events(conn: Connection, events: Sequence[NewAssetEvent]) -> list[int]:
    """Insert asset events and queue each for the active flows scheduled on its asset."""
    if not events:
        return []
    ids = ensure_assets(conn, [e.uri for e in events])
    now = utcnow()
    out: list[int] = []
    for event in events:
        asset_id = ids[event.uri]
        result = conn.execute(
            sa.insert(asset_events).values(
                asset_id=asset_id,
                source_flow_id=event.flow_id,
                source_run_id=event.run_id,
                source_task_id=event.task_id,
                extra=dict(event.extra),
                created_at=event.at or now,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        event_id = int(key[0])
        out.append(event_id)
        consumers = conn.execute(
            sa.select(asset_refs.c.flow_id)
            .join(flows, flows.c.flow_id == asset_refs.c.flow_id)
            .where(asset_refs.c.asset_id == asset_id, asset_refs.c.kind == SCHEDULE, flows.c.is_active == sa.true())
        ).scalars()
        rows = [{"flow_id": f, "event_id": event_id, "asset_id": asset_id} for f in consumers]
        if rows:
            conn.execute(sa.insert(asset_queue), rows)
    return out


def queued(conn: Connection) -> dict[str, list[tuple[int, str]]]:
    """Per flow, the (event id, asset URI) updates it has not consumed yet, oldest first."""
    stmt = (
        sa.select(asset_queue.c.flow_id, asset_queue.c.event_id, assets.c.uri)
        .join(assets, assets.c.id == asset_queue.c.asset_id)
        .order_by(asset_queue.c.flow_id, asset_queue.c.event_id)
    )
    out: dict[str, list[tuple[int, str]]] = {}
    for row in conn.execute(stmt):
        out.setdefault(row.flow_id, []).append((int(row.event_id), row.uri))
    return out


def drop_queued(conn: Connection, flow_id: str) -> None:
    conn.execute(sa.delete(asset_queue).where(asset_queue.c.flow_id == flow_id))


def consume(conn: Connection, flow_id: str, event_ids: Sequence[int], run_pk: int) -> bool:
    """Tie the events to the run they started and take them off the flow's queue; False (and
    nothing is changed that the caller should keep) when another writer consumed them first."""
    deleted = 0
    for part in chunks(list(event_ids)):
        deleted += conn.execute(
            sa.delete(asset_queue).where(asset_queue.c.flow_id == flow_id, asset_queue.c.event_id.in_(list(part)))
        ).rowcount
    if deleted != len(event_ids):
        return False
    conn.execute(sa.insert(asset_run_events), [{"run_pk": run_pk, "event_id": e} for e in event_ids])
    return True


_EVENT_COLUMNS = (
    asset_events.c.id,
    assets.c.uri,
    asset_events.c.extra,
    asset_events.c.source_flow_id,
    asset_events.c.source_run_id,
    asset_events.c.source_task_id,
    asset_events.c.created_at,
)


def _event(row: Any) -> AssetEventRecord:
    return AssetEventRecord(
        id=int(row.id),
        uri=row.uri,
        extra=row.extra or {},
        flow_id=row.source_flow_id,
        run_id=row.source_run_id,
        task_id=row.source_task_id,
        created_at=row.created_at,
    )


def events_by_id(conn: Connection, event_ids: Sequence[int]) -> list[AssetEventRecord]:
    out: list[AssetEventRecord] = []
    for part in chunks(list(event_ids)):
        stmt = (
            sa.select(*_EVENT_COLUMNS)
            .join(assets, assets.c.id == asset_events.c.asset_id)
            .where(asset_events.c.id.in_(list(part)))
        )
        out += [_event(r) for r in conn.execute(stmt)]
    return sorted(out, key=lambda e: e.id)


def asset_events_of(conn: Connection, uri: str, *, limit: int = 50, offset: int = 0) -> list[AssetEventRecord]:
    """An asset's updates, newest first."""
    stmt = (
        sa.select(*_EVENT_COLUMNS)
        .join(assets, assets.c.id == asset_events.c.asset_id)
        .where(assets.c.uri == uri)
        .order_by(asset_events.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [_event(r) for r in conn.execute(stmt)]


def runs_started_by(conn: Connection, event_ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    """For each event, the (flow id, run id) of the runs it started."""
    out: dict[int, list[tuple[str, str]]] = {}
    for part in chunks(list(event_ids)):
        stmt = (
            sa.select(asset_run_events.c.event_id, runs.c.flow_id, runs.c.run_id)
            .join(runs, runs.c.id == asset_run_events.c.run_pk)
            .where(asset_run_events.c.event_id.in_(list(part)))
        )
        for row in conn.execute(stmt):
            out.setdefault(int(row.event_id), []).append((row.flow_id, row.run_id))
    return out


def list_assets(conn: Connection, *, search: str | None = None) -> list[AssetRecord]:
    """Every asset, with when it was last updated and how often, by URI."""
    counts = (
        sa.select(
            asset_events.c.asset_id,
            sa.func.count().label("n"),
            sa.func.max(asset_events.c.created_at).label("last"),
        )
        .group_by(asset_events.c.asset_id)
        .subquery()
    )
    stmt = (
        sa.select(assets.c.id, assets.c.uri, assets.c.extra, assets.c.created_at, counts.c.n, counts.c.last)
        .outerjoin(counts, counts.c.asset_id == assets.c.id)
        .order_by(assets.c.uri)
    )
    records = [
        AssetRecord(r.id, r.uri, r.extra or {}, r.created_at, _aware(r.last), int(r.n or 0)) for r in conn.execute(stmt)
    ]
    if search:
        records = [r for r in records if search.lower() in r.uri.lower()]
    return records


def _aware(value: Any) -> dt.datetime | None:
    """``max()`` over a UtcDateTime column loses the column type on some backends."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def get_asset(conn: Connection, uri: str) -> AssetRecord | None:
    row = conn.execute(sa.select(assets).where(assets.c.uri == uri)).first()
    if row is None:
        return None
    return AssetRecord(row.id, row.uri, row.extra or {}, row.created_at)


def refs(conn: Connection, *, uri: str | None = None, active_only: bool = True) -> list[AssetRef]:
    """Asset references of (active) flows, optionally for one asset."""
    stmt = (
        sa.select(asset_refs.c.flow_id, assets.c.uri, asset_refs.c.kind, asset_refs.c.task_id)
        .join(assets, assets.c.id == asset_refs.c.asset_id)
        .join(flows, flows.c.flow_id == asset_refs.c.flow_id)
        .order_by(asset_refs.c.flow_id, asset_refs.c.task_id, asset_refs.c.kind)
    )
    if active_only:
        stmt = stmt.where(flows.c.is_active == sa.true())
    if uri is not None:
        stmt = stmt.where(assets.c.uri == uri)
    return [AssetRef(r.flow_id, r.uri, r.kind, r.task_id) for r in conn.execute(stmt)]


def triggering_events(conn: Connection, run_pk: int) -> list[AssetEventRecord]:
    ids = conn.execute(sa.select(asset_run_events.c.event_id).where(asset_run_events.c.run_pk == run_pk)).scalars()
    return events_by_id(conn, [int(i) for i in ids])
