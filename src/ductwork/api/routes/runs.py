"""Runs: list with filters and paging (all flows or one), detail, cancel, state history."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Query

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import (
    ERRORS,
    ID_PATTERN,
    MAX_OFFSET,
    FlowId,
    RunId,
    RunType,
    check_run_types,
    find_run,
    utc,
)
from ductwork.api.security import Operator, Viewer
from ductwork.core.states import RunState
from ductwork.services import runs as run_service
from ductwork.store.engine import read_transaction
from ductwork.store.repo import events as event_repo
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo

router = APIRouter(tags=["runs"], responses=ERRORS)

SINCE = "Logical date from (included); ISO 8601, a date without an offset is UTC (not the flow's timezone)."
UNTIL = "Logical date until (excluded); ISO 8601, a date without an offset is UTC."


def _page(
    ctx: WebContext,
    flow_id: str | None,
    state: list[RunState] | None,
    run_type: list[str] | None,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    offset: int,
) -> schemas.RunPage:
    with read_transaction(ctx.engine) as conn:
        check_run_types(conn, run_type)
        page = run_repo.list_runs(
            conn,
            flow_id=flow_id,
            states=state or None,
            run_types=run_type or None,
            since=utc(since),
            until=utc(until),
            limit=limit,
            offset=offset,
        )
        unknown = flow_id is not None and page.total == 0 and flow_repo.get_flow(conn, flow_id) is None
    if unknown:
        assert flow_id is not None
        run_service.flow_graph(ctx.engine, flow_id)  # raises the 404 with a "did you mean"
    return schemas.RunPage(
        items=[schemas.run_out(r) for r in page.items], total=page.total, limit=page.limit, offset=page.offset
    )


@router.get("/runs", response_model=schemas.RunPage, dependencies=[Viewer])
def list_all_runs(
    ctx: WebContext = Depends(web_context),
    flow_id: str | None = Query(None, max_length=250, pattern=ID_PATTERN),
    state: list[RunState] | None = Query(None),
    run_type: list[RunType] | None = Query(None, description="Only runs of these types (manual, scheduled...)."),
    since: schemas.SaneDate | None = Query(None, description=SINCE),
    until: schemas.SaneDate | None = Query(None, description=UNTIL),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> schemas.RunPage:
    """Runs of every flow (or one), newest logical date first."""
    return _page(ctx, flow_id, state, run_type, since, until, limit, offset)


@router.get("/flows/{flow_id}/runs", response_model=schemas.RunPage, dependencies=[Viewer])
def list_runs(
    flow_id: FlowId,
    ctx: WebContext = Depends(web_context),
    state: list[RunState] | None = Query(None),
    run_type: list[RunType] | None = Query(None, description="Only runs of these types (manual, scheduled...)."),
    since: schemas.SaneDate | None = Query(None, description=SINCE),
    until: schemas.SaneDate | None = Query(None, description=UNTIL),
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> schemas.RunPage:
    return _page(ctx, flow_id, state, run_type, since, until, limit, offset)


@router.get("/flows/{flow_id}/runs/{run_id}", response_model=schemas.RunOut, dependencies=[Viewer])
def get_run(flow_id: FlowId, run_id: RunId, ctx: WebContext = Depends(web_context)) -> schemas.RunOut:
    return schemas.run_out(find_run(ctx, flow_id, run_id))


@router.post("/flows/{flow_id}/runs/{run_id}/cancel", response_model=schemas.CancelOut, dependencies=[Operator])
def cancel_run(
    flow_id: FlowId,
    run_id: RunId,
    ctx: WebContext = Depends(web_context),
    dry_run: bool = Query(False, description="Only list the tasks that would be stopped."),
) -> schemas.CancelOut:
    """Stop a run: its running tasks are marked failed (the scheduler stops their tries) and the
    tasks not started skipped, as Airflow marks a run failed.
    A run that already finished is refused with 409 (also as a dry run) and left as it is."""
    record, unfinished = run_service.cancel_preview(ctx.engine, flow_id, run_id)
    if not dry_run:
        record = run_service.cancel(ctx.engine, flow_id, run_id, reason="cancelled from the web")
    return schemas.CancelOut(**schemas.run_out(record).model_dump(), dry_run=dry_run, task_ids=unfinished)


@router.get("/flows/{flow_id}/runs/{run_id}/diff", response_model=schemas.RunDiffOut, dependencies=[Viewer])
def diff_runs(
    flow_id: FlowId,
    run_id: RunId,
    ctx: WebContext = Depends(web_context),
    other: str = Query(..., min_length=1, max_length=250, pattern=ID_PATTERN, description="The run to compare with."),
) -> schemas.RunDiffOut:
    """What changed from this run to ``other``: tasks added, removed and changed (field by field),
    edges, the flow's settings, and the code (files whose content differs, git commits)."""
    from ductwork.services.run_diff import diff_runs as diff

    return schemas.run_diff_out(diff(ctx.engine, flow_id, run_id, other))


@router.get("/flows/{flow_id}/runs/{run_id}/events", response_model=list[schemas.EventOut], dependencies=[Viewer])
def run_events(
    flow_id: FlowId,
    run_id: RunId,
    ctx: WebContext = Depends(web_context),
    task_id: str | None = Query(None, max_length=250, pattern=ID_PATTERN),
    limit: int = Query(1000, ge=1, le=100_000),
) -> list[schemas.EventOut]:
    """The run's state changes in the order they happened (one task's with ``task_id``)."""
    record = find_run(ctx, flow_id, run_id)
    with read_transaction(ctx.engine) as conn:
        events = event_repo.list_state_events(conn, record.pk, task_id=task_id, limit=limit)
    return [
        schemas.EventOut(task_id=e.task_id, old=e.old, new=e.new, reason=e.reason, try_number=e.try_number, at=e.at)
        for e in events
    ]
