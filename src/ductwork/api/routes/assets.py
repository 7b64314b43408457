"""Assets: the list, one asset's producers, consumers and updates, and the lineage across flows;
and why a task ran or did not (incremental recomputation)."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Query

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS, ID_PATTERN, FlowId, RunId, TaskId
from ductwork.api.security import Operator, Viewer
from ductwork.services import assets as asset_service
from ductwork.services import why as why_service
from ductwork.store.engine import read_transaction
from ductwork.store.repo import assets as asset_repo

router = APIRouter(tags=["assets"], responses=ERRORS)


@router.get("/assets", dependencies=[Viewer])
def list_assets(
    ctx: WebContext = Depends(web_context),
    search: str | None = Query(None, max_length=700, pattern=ID_PATTERN),
) -> dict[str, Any]:
    """Every asset with the flows that write it (``producers``), are scheduled on it
    (``consumers``) and read it (``readers``), its number of updates and the time of the latest."""
    with read_transaction(ctx.engine) as conn:
        found = asset_repo.list_assets(conn, search=search)
    flows = asset_service.flows_of_assets(ctx.engine)
    none: dict[str, list[str]] = {"producers": [], "consumers": [], "readers": []}
    items = [
        {
            "uri": a.uri,
            **flows.get(a.uri, none),
            "events": a.events,
            "last_event_at": a.last_event_at.isoformat() if a.last_event_at else None,
        }
        for a in found
    ]
    return {"items": items, "total": len(items)}


@router.get("/assets/detail", dependencies=[Viewer])
def asset_detail(
    ctx: WebContext = Depends(web_context),
    uri: str = Query(..., min_length=1, max_length=700, pattern=ID_PATTERN, description="The asset's URI."),
    limit: int = Query(50, ge=1, le=1000),
) -> dict[str, Any]:
    """One asset: the tasks that write it, the flows scheduled on it, the tasks that read it,
    and its latest updates (with the run that made each and the runs each started)."""
    return dataclasses.asdict(
        asset_service.asset_detail(ctx.engine, asset_service.uri_named(ctx.engine, uri), limit=limit)
    )


@router.post("/assets/events", dependencies=[Operator], status_code=201)
def create_asset_event(body: schemas.AssetEventIn, ctx: WebContext = Depends(web_context)) -> dict[str, Any]:
    """Record an update of an asset made outside any flow (Airflow's "create asset event"): the
    flows scheduled on it start as they do for a task's update. 404 for an asset no flow knows."""
    event = asset_service.record_update(ctx.engine, asset_service.uri_named(ctx.engine, body.uri), extra=body.extra)
    return event.to_dict()


@router.get("/assets/lineage", dependencies=[Viewer])
def lineage(ctx: WebContext = Depends(web_context)) -> dict[str, Any]:
    """Flows and assets as one graph: flow -> asset when a task writes it, asset -> flow when
    the flow is scheduled on it ("triggers") or a task reads it ("reads")."""
    return asset_service.lineage(ctx.engine)


@router.get("/flows/{flow_id}/runs/{run_id}/tasks/{task_id}/why", dependencies=[Viewer])
def why(flow_id: FlowId, run_id: RunId, task_id: TaskId, ctx: WebContext = Depends(web_context)) -> dict[str, Any]:
    """Why the task ran in this run or did not: for cache="content" tasks what changed (code,
    which parameter, which input) or what matched; for class tasks which outputs were missing."""
    return why_service.explain(ctx.engine, flow_id, task_id, run_id)
