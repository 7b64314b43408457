"""What the UI draws: the grid (runs x tasks), a run's graph with live states, its Gantt chart.

These answer in well under 500 ms for 25 runs of 10,000 tasks: one query per view, no record
objects per task, and state codes packed into strings (``ductwork.store.repo.views``). The grid
and graph answers are built with ``model_construct``: their values come typed from the store,
and validating them again cost a 100,000-task run's graph a fifth of its answer (issue 15).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS, MAX_OFFSET, FlowId, RunId, RunType, check_run_types, find_run
from ductwork.api.routes.flows import CODES
from ductwork.api.security import Viewer
from ductwork.core.states import RunState
from ductwork.core.task_order import instances_under_their_task, reorder, reorder_text
from ductwork.services import runs as run_service
from ductwork.services import why as why_service
from ductwork.store.engine import read_transaction
from ductwork.store.repo import events as event_repo
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import views

router = APIRouter(tags=["views"], responses=ERRORS)


@router.get("/flows/{flow_id}/grid", response_model=schemas.GridOut, dependencies=[Viewer])
def grid(
    flow_id: FlowId,
    ctx: WebContext = Depends(web_context),
    limit: int = Query(25, ge=1, le=100, description="How many runs (columns)."),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Skip this many of the newest runs."),
    run_type: list[RunType] | None = Query(None, description="Only runs of these types (manual, scheduled...)."),
) -> schemas.GridOut:
    """The states of every task in the flow's latest runs: ``runs[j].states[i]`` is the state
    code (see ``codes``) of ``task_ids[i]``; runs are oldest first. A mapped task's instances
    (``t[0]``...) come right after their task."""
    with read_transaction(ctx.engine) as conn:
        check_run_types(conn, run_type)
        page = run_repo.list_runs(conn, flow_id=flow_id, run_types=run_type or None, limit=limit, offset=offset)
        known = page.total > 0 or flow_repo.get_flow(conn, flow_id) is not None
        data = views.grid(conn, [r.pk for r in page.items])
        parents = views.run_groups(conn, page.items[0].pk) if page.items else {}
    if not known:
        run_service.flow_graph(ctx.engine, flow_id)  # raises the 404 with a hint
    if not page.items:
        graph = run_service.flow_graph(ctx.engine, flow_id)
        nodes = list(graph.nodes.values())
        data = views.Grid([n.task_id for n in nodes], [n.group for n in nodes], {})
        parents = {str(g): (info or {}).get("parent") for g, info in graph.groups.items()}
    task_ids, groups, codes = data.task_ids, data.groups, data.codes
    order = instances_under_their_task(task_ids)
    if order is not None:
        task_ids, groups = reorder(task_ids, order), reorder(groups, order)
        codes = {pk: reorder_text(text, order) for pk, text in codes.items()}
    runs = [
        schemas.GridRunOut(
            run_id=r.run_id,
            state=r.state.value,
            run_type=r.run_type,
            logical_date=r.logical_date,
            start_date=r.start_date,
            end_date=r.end_date,
            states=codes[r.pk],
        )
        for r in reversed(page.items)
    ]
    # Built unvalidated: every value comes typed from the store, and validating 100,000 task ids
    # again would cost a large flow's grid a noticeable part of its answer.
    return schemas.GridOut.model_construct(
        flow_id=flow_id,
        task_ids=task_ids,
        groups=groups,
        group_parents=parents,
        runs=runs,
        total_runs=page.total,
        codes=CODES,
    )


@router.get("/flows/{flow_id}/runs/{run_id}/graph", response_model=schemas.GraphOut, dependencies=[Viewer])
def run_graph(flow_id: FlowId, run_id: RunId, ctx: WebContext = Depends(web_context)) -> schemas.GraphOut:
    """The graph recorded with the run (grown by any dynamic dependencies), with task states,
    tries and task groups."""
    record = find_run(ctx, flow_id, run_id)
    with read_transaction(ctx.engine) as conn:
        view = views.run_graph(conn, record.pk)
        parents = views.run_groups(conn, record.pk)
        reused = why_service.reused_in_run(conn, record.pk, dict(zip(view.task_ids, view.tries or (), strict=False)))
    # Unvalidated, as the grid: 100,000 upstream lists would be checked one by one.
    return schemas.GraphOut.model_construct(
        task_ids=view.task_ids,
        upstream=view.upstream,
        groups=view.groups,
        operators=view.operators,
        group_parents=parents,
        states=view.codes,
        tries=view.tries,
        codes=CODES,
        reused=reused or None,
    )


@router.get("/flows/{flow_id}/runs/{run_id}/states", response_model=schemas.RunStatesOut, dependencies=[Viewer])
def run_states(flow_id: FlowId, run_id: RunId, ctx: WebContext = Depends(web_context)) -> schemas.RunStatesOut:
    """The run's state and its task states as codes in graph order: what a live page polls.
    When ``count`` differs from the graph a page holds, the graph grew: fetch it again. A run
    that ended comes with why, when its tasks did not decide it (the header showed a cancel's
    reason only once the page was loaded again)."""
    record = find_run(ctx, flow_id, run_id)
    with read_transaction(ctx.engine) as conn:
        state, revision = views.run_revision(conn, record.pk)
        codes = views.run_codes(conn, record.pk)
        reason = event_repo.run_end_reason(conn, record.pk) if RunState(state).is_terminal else ""
    return schemas.RunStatesOut(state=state, count=len(codes), states=codes, revision=revision, reason=reason)


@router.get("/flows/{flow_id}/runs/{run_id}/gantt", response_model=schemas.GanttOut, dependencies=[Viewer])
def gantt(flow_id: FlowId, run_id: RunId, ctx: WebContext = Depends(web_context)) -> schemas.GanttOut:
    """Every try of the run that started, with its start and end, by start time."""
    record = find_run(ctx, flow_id, run_id)
    with read_transaction(ctx.engine) as conn:
        bars = views.gantt(conn, record.pk)
    return schemas.GanttOut(
        run_start=record.start_date,
        run_end=record.end_date,
        bars=[
            schemas.GanttBarOut(task_id=b.task_id, try_number=b.try_number, state=b.state, start=b.start, end=b.end)
            for b in bars
        ],
    )
