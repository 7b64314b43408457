"""Runs started by assets, and what the UI and CLI show about assets.

``create_asset_runs`` is called by the scheduler at every poll: for each flow with queued asset
updates whose condition now holds (``core.assets``), it creates one run that carries the
triggering events, and consumes those events, in one transaction per flow.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine

from ductwork.core.assets import condition_from_dict
from ductwork.core.graph import FlowGraph
from ductwork.errors import DuctworkError, NotFoundError, ParameterError, did_you_mean
from ductwork.services.runs import CLASS_TASKS, make_run_id, validate_params
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import assets as asset_repo
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo._util import chunks
from ductwork.store.tables import asset_queue
from ductwork.store.types import utcnow

log = logging.getLogger("ductwork.scheduler")
ASSET_TRIGGERED = "asset_triggered"


class _Raced(Exception):
    """Another scheduler consumed the events first: roll this flow's transaction back."""


def create_asset_runs(
    engine: Engine,
    *,
    now: dt.datetime | None = None,
    schedules: Callable[[str, str | None], bool] | None = None,
) -> list[RunRecord]:
    """Start the runs that asset updates are due to start. ``schedules(flow_id, fileloc)``: whether
    this scheduler starts the flow's runs (the flows of its folders); the updates of the others
    wait for a scheduler that does."""
    with read_transaction(engine) as conn:
        pending = asset_repo.queued(conn)
    created: list[RunRecord] = []
    for flow_id, items in pending.items():
        try:
            with transaction(engine) as conn:
                record = _maybe_start(conn, flow_id, items, now or utcnow(), schedules)
        except _Raced:
            continue
        except DuctworkError as exc:
            log.error("flow %s: could not start a run from its asset updates: %s", flow_id, exc)
            continue
        if record is not None:
            created.append(record)
            log.info("flow %s: run %s started by %d asset update(s)", flow_id, record.run_id, len(items))
    return created


def _maybe_start(
    conn: Any,
    flow_id: str,
    items: list[tuple[int, str]],
    now: dt.datetime,
    schedules: Callable[[str, str | None], bool] | None,
) -> RunRecord | None:
    flow = flow_repo.get_flow(conn, flow_id)
    graph = flow_repo.get_flow_graph(conn, flow_id)
    if flow is None or graph is None or not flow.is_active or not graph.meta.assets:
        asset_repo.drop_queued(conn, flow_id)  # the flow is gone or no longer scheduled on assets
        return None
    if flow.is_paused or (schedules is not None and not schedules(flow_id, flow.fileloc)):
        return None
    condition = condition_from_dict(graph.meta.assets)
    items = _drop_unnamed(conn, flow_id, items, set(condition.uris()))
    if not items or not condition.evaluate({uri for _, uri in items}):
        return None
    if len(run_repo.active_runs(conn, flow_id=flow_id)) >= graph.meta.max_active_runs:
        return None
    event_ids = [e for e, _ in items]
    events = asset_repo.events_by_id(conn, event_ids)
    pending = graph.meta.style == CLASS_TASKS
    record = run_repo.create_run(
        conn,
        FlowGraph(graph.meta, {}, graph.groups) if pending else graph,
        run_id=_free_run_id(conn, flow_id, make_run_id(ASSET_TRIGGERED, now)),
        logical_date=now,
        data_interval=(now, now),
        run_type=ASSET_TRIGGERED,
        params=validate_params(graph.meta, None),
        graph_pending=pending,
        note=f"started by updates of {', '.join(sorted({e.uri for e in events}))}",
        triggered_by={"kind": "assets", "asset_events": [e.to_dict() for e in events]},
        now=now,
    )
    if not asset_repo.consume(conn, flow_id, event_ids, record.pk):
        raise _Raced()
    return record


def _drop_unnamed(conn: Any, flow_id: str, items: list[tuple[int, str]], named: set[str]) -> list[tuple[int, str]]:
    """The queued updates of assets the flow's schedule still names; the others are taken off its
    queue. Queued before the schedule was edited (``[a, b]`` to ``[b, c]``), an update of ``a``
    stayed and rode along in the next run's ``triggering_asset_events``, with ``a`` in its note,
    though the flow no longer waits for ``a`` (Airflow passes a run the events of the assets its
    schedule names)."""
    unnamed = [event_id for event_id, uri in items if uri not in named]
    for part in chunks(unnamed):  # a long-edited flow may have queued many: bound the IN list
        conn.execute(sa.delete(asset_queue).where(asset_queue.c.flow_id == flow_id, asset_queue.c.event_id.in_(part)))
    if unnamed:
        log.info(
            "flow %s: %d queued asset update(s) of assets its schedule no longer names dropped", flow_id, len(unnamed)
        )
    return [(event_id, uri) for event_id, uri in items if uri in named]


def _free_run_id(conn: Any, flow_id: str, proposed: str) -> str:
    candidate, n = proposed, 1
    while run_repo.get_run(conn, flow_id, candidate) is not None:
        n += 1
        candidate = f"{proposed}.{n}"
    return candidate


# --- naming an asset ---------------------------------------------------------------------------
BARE_NAME_SCHEME = "asset://"
"""Where an Airflow DAG's ``Dataset("orders")`` (a name alone) is recorded: ``asset://orders``."""


def uri_named(engine: Engine, text: str) -> str:
    """The asset ``text`` names, as ``assets show``/``update`` and the API take it: a URI (or an
    absolute path), or a name alone when an Airflow DAG recorded it as ``asset://<name>``.
    ``ductwork assets show orders`` for ``Dataset("orders")`` answered "has no scheme", and the
    list showed ``asset://orders`` with nothing to say that this is the same asset."""
    from ductwork.core.assets import normalize_uri
    from ductwork.errors import DefinitionError

    try:
        return normalize_uri(text)
    except DefinitionError as exc:
        name = text.strip() if isinstance(text, str) else ""
        if not name or "://" in name:
            raise
        bare = BARE_NAME_SCHEME + name
        with read_transaction(engine) as conn:
            if asset_repo.get_asset(conn, bare) is not None:
                return bare
        try:
            normalize_uri(bare)
        except DefinitionError:
            # Not a name either (a path with a space in it): "is written asset:///data/daily
            # orders.csv" sent the user to a spelling refused for the same reason.
            raise exc from None
        raise DefinitionError(f"{exc} (a name alone, as an Airflow Dataset('{name}') has, is written {bare})") from None


# --- updates made outside any flow --------------------------------------------------------------
def record_update(engine: Engine, uri: str, *, extra: Mapping[str, Any] | None = None) -> asset_repo.AssetEventRecord:
    """Record that an asset was updated by something that is not a task (a load done by hand, a
    system outside Ductwork), as Airflow's "create asset event" does: the flows scheduled on it
    see it as they see a task's update. The asset must be known (written, read or waited on by a
    flow), so that a mistyped URI is refused rather than recorded where nothing listens."""
    if extra is not None and not isinstance(extra, Mapping):
        raise ParameterError(f"an asset update's extra must be a JSON object, got {type(extra).__name__}")
    with transaction(engine) as conn:
        if asset_repo.get_asset(conn, uri) is None:
            known = [a.uri for a in asset_repo.list_assets(conn)]
            hint = did_you_mean(uri, known) or (
                " No flow in the database names an asset yet: the scheduler records a flow's assets when it"
                " reads the flows folder."
                if not known
                else ""
            )
            raise NotFoundError(f"no asset {uri!r}.{hint}")
        (event_id,) = asset_repo.record_events(conn, [asset_repo.NewAssetEvent(uri, dict(extra or {}))])
        (event,) = asset_repo.events_by_id(conn, [event_id])
    log.info("asset %s: update recorded from outside a flow (event %d)", uri, event_id)
    return event


# --- what the UI and CLI show ------------------------------------------------------------------
@dataclass(frozen=True)
class AssetDetail:
    uri: str
    extra: dict[str, Any]
    producers: list[tuple[str, str]]
    """(flow id, task id) of the tasks that declare it an outlet."""
    consumers: list[str]
    """Flows scheduled on it."""
    readers: list[tuple[str, str]]
    """(flow id, task id) of the tasks that declare it an inlet."""
    events: list[dict[str, Any]] = field(default_factory=list)


def asset_detail(engine: Engine, uri: str, *, limit: int = 50) -> AssetDetail:
    with read_transaction(engine) as conn:
        record = asset_repo.get_asset(conn, uri)
        if record is None:
            known = [a.uri for a in asset_repo.list_assets(conn)]
            raise NotFoundError(f"no asset {uri!r}.{did_you_mean(uri, known)}")
        refs = asset_repo.refs(conn, uri=uri)
        events = asset_repo.asset_events_of(conn, uri, limit=limit)
        started = asset_repo.runs_started_by(conn, [e.id for e in events])
    return AssetDetail(
        uri=uri,
        extra=dict(record.extra),
        producers=[(r.flow_id, r.task_id) for r in refs if r.kind == asset_repo.OUTLET],
        consumers=sorted({r.flow_id for r in refs if r.kind == asset_repo.SCHEDULE}),
        readers=[(r.flow_id, r.task_id) for r in refs if r.kind == asset_repo.INLET],
        events=[
            {**e.to_dict(), "started": [{"flow_id": f, "run_id": r} for f, r in started.get(e.id, [])]} for e in events
        ],
    )


def flows_of_assets(engine: Engine) -> dict[str, dict[str, list[str]]]:
    """Per asset URI, the flows that write it (``producers``), that are scheduled on it
    (``consumers``) and whose tasks read it (``readers``), each sorted: what ``assets list``
    and ``GET /api/v1/assets`` show beside the update counts, as the web UI's Assets page does
    (they showed only the counts, so the lineage was the web UI's alone)."""
    with read_transaction(engine) as conn:
        refs = asset_repo.refs(conn)
    kinds = {asset_repo.OUTLET: "producers", asset_repo.SCHEDULE: "consumers", asset_repo.INLET: "readers"}
    found: dict[str, dict[str, set[str]]] = {}
    for ref in refs:
        sets = found.setdefault(ref.uri, {"producers": set(), "consumers": set(), "readers": set()})
        sets[kinds.get(ref.kind, "readers")].add(ref.flow_id)
    return {uri: {k: sorted(v) for k, v in sets.items()} for uri, sets in found.items()}


def lineage(engine: Engine) -> dict[str, Any]:
    """The graph across flows: flow and asset nodes; edges flow -> asset (a task writes it),
    asset -> flow (the flow is scheduled on it or a task reads it)."""
    with read_transaction(engine) as conn:
        refs = asset_repo.refs(conn)
    nodes: dict[str, dict[str, str]] = {}
    edges: set[tuple[str, str, str]] = set()
    for ref in refs:
        flow_node, asset_node = f"flow:{ref.flow_id}", f"asset:{ref.uri}"
        nodes[flow_node] = {"id": flow_node, "kind": "flow", "label": ref.flow_id}
        nodes[asset_node] = {"id": asset_node, "kind": "asset", "label": ref.uri}
        if ref.kind == asset_repo.OUTLET:
            edges.add((flow_node, asset_node, "writes"))
        else:
            edges.add((asset_node, flow_node, "triggers" if ref.kind == asset_repo.SCHEDULE else "reads"))
    return {
        "nodes": sorted(nodes.values(), key=lambda n: n["id"]),
        "edges": [{"source": s, "target": t, "kind": k} for s, t, k in sorted(edges)],
    }
