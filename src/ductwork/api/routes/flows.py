"""Flows: list and search, detail with typed parameters, current graph, pause, trigger, backfill."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Depends, Query

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS, ID_PATTERN, MAX_OFFSET, FlowId
from ductwork.api.security import Operator, Viewer
from ductwork.core.assets import condition_from_dict
from ductwork.core.graph import FlowGraph, NodeSpec
from ductwork.core.triggers import trigger_from_dict
from ductwork.errors import NotFoundError, ParameterError
from ductwork.services import runs as run_service
from ductwork.services import tasks as task_service
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.records import FlowRecord
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import views
from ductwork.store.repo.views import STATE_CODES

router = APIRouter(tags=["flows"], responses=ERRORS)

CODES = {code: state for state, code in STATE_CODES.items()}


def _matches(flow: FlowRecord, search: str) -> bool:
    needle = search.lower()
    haystack = [flow.flow_id, flow.description, flow.owner, *flow.tags]
    return any(needle in text.lower() for text in haystack)


@router.get("/flows", response_model=schemas.FlowPage, dependencies=[Viewer])
def list_flows(
    ctx: WebContext = Depends(web_context),
    search: str | None = Query(
        None, max_length=250, pattern=ID_PATTERN, description="Text in the id, description, owner or tags."
    ),
    tag: str | None = Query(None, max_length=250, pattern=ID_PATTERN),
    paused: bool | None = Query(None),
    include_inactive: bool = Query(False, description="Also flows whose file no longer defines them."),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> schemas.FlowPage:
    """Flows with their schedule, owner, tags, pause state, next run and latest run states."""
    with read_transaction(ctx.engine) as conn:
        found = flow_repo.list_flows(conn, active=None if include_inactive else True, paused=paused, tag=tag)
        if search:
            found = [f for f in found if _matches(f, search)]
        page = found[offset : offset + limit]
        recent = views.recent_run_states(conn, [f.flow_id for f in page])
    return schemas.FlowPage(
        items=[schemas.flow_out(f, [s.value for s in recent[f.flow_id]]) for f in page],
        total=len(found),
        limit=limit,
        offset=offset,
    )


def _flow(ctx: WebContext, flow_id: str) -> tuple[schemas.FlowOut, FlowGraph]:
    graph = run_service.flow_graph(ctx.engine, flow_id)  # NotFoundError with a hint
    with read_transaction(ctx.engine) as conn:
        record = flow_repo.get_flow(conn, flow_id)
        recent = views.recent_run_states(conn, [flow_id])[flow_id]
    if record is None:  # pragma: no cover - deleted between the two reads
        raise NotFoundError(f"no flow {flow_id!r} in the database")
    return schemas.flow_out(record, [s.value for s in recent]), graph


@router.get("/flows/{flow_id}", response_model=schemas.FlowDetailOut, dependencies=[Viewer])
def get_flow(flow_id: FlowId, ctx: WebContext = Depends(web_context)) -> schemas.FlowDetailOut:
    """One flow, with its run parameters (name, type, default) for a trigger form."""
    summary, graph = _flow(ctx, flow_id)
    return schemas.FlowDetailOut(
        **summary.model_dump(),
        doc=graph.meta.doc,
        params=schemas.params_out(dict(graph.meta.params)),
        tasks=len(graph.nodes),
        max_active_runs=graph.meta.max_active_runs,
        version_hash=graph.version_hash(),
        assets=condition_from_dict(graph.meta.assets).describe() if graph.meta.assets else None,
        triggers=[trigger_from_dict(t).source for t in graph.meta.triggers],
        params_in_conf=graph.meta.params_in_conf,
    )


_NODE_DEFAULT = {f.name: f.default for f in dataclasses.fields(NodeSpec) if f.name in ("operator", "group", "family")}


def graph_out(data: Mapping[str, Any]) -> schemas.GraphOut:
    """A stored graph (``FlowGraph.to_dict``: fields at their defaults left out) as arrays, read
    straight from its plain data: building a ``NodeSpec`` per task cost a 100,000-task flow's
    graph most of a second."""
    nodes = data["nodes"]
    ids = [n["task_id"] for n in nodes]
    index = {t: i for i, t in enumerate(ids)}
    group, operator = _NODE_DEFAULT["group"], _NODE_DEFAULT["operator"]
    return schemas.GraphOut.model_construct(  # typed by construction; see routes/views.py
        task_ids=ids,
        upstream=[[index[u] for u in n.get("upstream", ()) if u in index] for n in nodes],
        groups=[n.get("group", group) for n in nodes],
        operators=[n.get("family") or n.get("operator", operator) for n in nodes],
        group_parents={str(g): (info or {}).get("parent") for g, info in (data.get("groups") or {}).items()},
        codes=CODES,
    )


@router.get("/flows/{flow_id}/graph", response_model=schemas.GraphOut, dependencies=[Viewer])
def get_flow_graph(flow_id: FlowId, ctx: WebContext = Depends(web_context)) -> schemas.GraphOut:
    """The flow's graph as last parsed (a run's own recorded graph is at .../runs/{run_id}/graph)."""
    with read_transaction(ctx.engine) as conn:
        data = flow_repo.get_flow_graph_data(conn, flow_id)
    if data is None:
        run_service.flow_graph(ctx.engine, flow_id)  # raises the 404 with a hint
        raise NotFoundError(f"no flow {flow_id!r}")  # the flow went away in between
    return graph_out(data)


@router.patch("/flows/{flow_id}", response_model=schemas.FlowOut, dependencies=[Operator])
def patch_flow(flow_id: FlowId, body: schemas.FlowPatch, ctx: WebContext = Depends(web_context)) -> schemas.FlowOut:
    """Pause or unpause a flow (a paused flow gets no scheduled runs; triggered runs still run)."""
    with transaction(ctx.engine) as conn:
        if flow_repo.get_flow(conn, flow_id) is None:
            run_service.flow_graph(ctx.engine, flow_id)  # raises the helpful 404
        flow_repo.set_paused(conn, flow_id, body.is_paused)
    summary, _graph = _flow(ctx, flow_id)
    return summary


@router.post("/flows/{flow_id}/runs", response_model=schemas.RunOut, status_code=201, dependencies=[Operator])
def trigger(flow_id: FlowId, body: schemas.TriggerIn, ctx: WebContext = Depends(web_context)) -> schemas.RunOut:
    """Queue a manual run; parameters are checked against the flow's typed parameters (422 names
    the parameter and the type it wants)."""
    run_service.defined_flow_graph(ctx.engine, flow_id)  # 404 for a flow no file defines now
    record = run_service.trigger(
        ctx.engine,
        flow_id,
        params=body.params,
        conf=body.conf,
        logical_date=body.logical_date,
        run_id=body.run_id,
        note=body.note,
    )
    return schemas.run_out(record)


@router.post("/flows/{flow_id}/backfill", response_model=schemas.BackfillOut, dependencies=[Operator])
def backfill(flow_id: FlowId, body: schemas.BackfillIn, ctx: WebContext = Depends(web_context)) -> schemas.BackfillOut:
    """Queue a run for every schedule interval from ``start`` to ``end`` that has none
    (``dry_run``: only say which)."""
    try:
        graph, planned = run_service.plan_backfill(
            ctx.engine, flow_id, body.start, body.end, max_runs=ctx.settings.backfill_max_runs
        )
    except ValueError as exc:
        if isinstance(exc, ParameterError):
            raise
        raise ParameterError(str(exc)) from None
    run_service.validate_params(graph.meta, body.params)
    rerun: dict[str, list[str]] = {}
    if body.rerun_failed:
        rerun = run_service.failed_tasks_to_rerun(ctx.engine, flow_id, [p.run_id for p in planned if p.exists])
    plans = [
        schemas.PlannedRunOut(
            run_id=p.run_id,
            logical_date=p.logical_date,
            exists=p.exists,
            tasks=list(p.tasks) if not p.exists else rerun.get(p.run_id, []),
        )
        for p in planned
    ]
    if body.dry_run:
        return schemas.BackfillOut(dry_run=True, planned=plans, created=[])
    created = run_service.backfill(
        ctx.engine, flow_id, body.start, body.end, params=body.params, max_runs=ctx.settings.backfill_max_runs
    )
    task_service.rerun_failed(ctx.engine, rerun, flow_id)
    return schemas.BackfillOut(dry_run=False, planned=plans, created=[schemas.run_out(r) for r in created])
