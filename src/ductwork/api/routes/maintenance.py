"""Deleting runs (operators) and cleaning old metadata (admins), each with a dry run."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS, FlowId, RunId
from ductwork.api.security import Admin, Operator
from ductwork.services import cleanup

router = APIRouter(tags=["maintenance"], responses=ERRORS)


@router.delete("/flows/{flow_id}/runs/{run_id}", response_model=schemas.DeletionOut, dependencies=[Operator])
def delete_run(
    flow_id: FlowId,
    run_id: RunId,
    ctx: WebContext = Depends(web_context),
    dry_run: bool = Query(False, description="Only say what would be deleted."),
) -> schemas.DeletionOut:
    """Delete a finished run with its tries, results (offloaded objects too), log files and
    events. 409 for a run still queued or running, and for the latest (or latest scheduled)
    run of its flow."""
    report = cleanup.delete_run(ctx.engine, flow_id, run_id, logs=ctx.settings.logs, dry_run=dry_run)
    return schemas.deletion_out(report)


@router.post("/db/clean", response_model=schemas.DeletionOut, dependencies=[Admin])
def clean(body: schemas.CleanIn, ctx: WebContext = Depends(web_context)) -> schemas.DeletionOut:
    """``ductwork db clean``: delete finished runs that ended longer ago than ``older_than``
    (of one flow with ``flow_id``), keeping the latest runs of each flow, and import errors of
    flow files that are gone."""
    report = cleanup.clean(
        ctx.engine,
        older_than=cleanup.parse_age(body.older_than, "older_than"),
        flow_id=body.flow_id,
        logs=ctx.settings.logs,
        flows_folder=ctx.settings.flows_folder,
        dry_run=body.dry_run,
    )
    return schemas.deletion_out(report)
