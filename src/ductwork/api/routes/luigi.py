"""Luigi's view: task families with counts per state, a filterable task list, workers and what
they run, resources and their use. It covers active runs and runs that ended in the last
``hours`` hours (Luigi's scheduler likewise shows the tasks it has seen recently)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS, ID_PATTERN, MAX_OFFSET
from ductwork.api.routes.pools import _pools
from ductwork.api.routes.system import SCHEDULER_TIMEOUT
from ductwork.api.security import Viewer
from ductwork.store.engine import read_transaction
from ductwork.store.repo import views
from ductwork.store.types import utcnow

router = APIRouter(prefix="/luigi", tags=["luigi"], responses=ERRORS)

LuigiState = Literal["pending", "running", "done", "failed", "upstream_failed", "disabled"]
Hours = Query(24, ge=1, le=24 * 90, description="Also runs that ended in this many past hours.")


def _scope(conn: Any, hours: int) -> list[int]:
    return views.scope_runs(conn, since=utcnow() - dt.timedelta(hours=hours))


def _task_out(t: views.LuigiTask) -> schemas.LuigiTaskOut:
    return schemas.LuigiTaskOut(
        flow_id=t.flow_id,
        run_id=t.run_id,
        task_id=t.task_id,
        family=t.family,
        state=t.state,
        luigi_state=t.luigi_state,
        start_date=t.start_date,
        end_date=t.end_date,
        hostname=t.hostname,
        pid=t.pid,
    )


@router.get("/families", response_model=schemas.FamiliesOut, dependencies=[Viewer])
def families(ctx: WebContext = Depends(web_context), hours: int = Hours) -> schemas.FamiliesOut:
    """Task families (a class task's family, else its operator) with counts per Luigi state."""
    with read_transaction(ctx.engine) as conn:
        pks = _scope(conn, hours)
        counts = views.family_counts(conn, pks)
    return schemas.FamiliesOut(
        states=list(views.LUIGI_STATES),
        families=[schemas.FamilyOut(family=f, counts=c) for f, c in counts.items()],
        runs=len(pks),
    )


@router.get("/tasks", response_model=schemas.LuigiTaskPage, dependencies=[Viewer])
def tasks(
    ctx: WebContext = Depends(web_context),
    family: str | None = Query(None, max_length=250, pattern=ID_PATTERN),
    state: LuigiState | None = Query(None),
    flow_id: str | None = Query(None, max_length=250, pattern=ID_PATTERN),
    search: str | None = Query(None, max_length=250, pattern=ID_PATTERN, description="Text in the task id."),
    hours: int = Hours,
    limit: int = Query(100, ge=1, le=5000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> schemas.LuigiTaskPage:
    """Tasks filtered by family, Luigi state, flow and text."""
    with read_transaction(ctx.engine) as conn:
        found, total = views.luigi_tasks(
            conn,
            _scope(conn, hours),
            family=family,
            state=state,
            flow_id=flow_id,
            search=search,
            limit=limit,
            offset=offset,
        )
    return schemas.LuigiTaskPage(items=[_task_out(t) for t in found], total=total, limit=limit, offset=offset)


@router.get("/workers", response_model=schemas.WorkersOut, dependencies=[Viewer])
def workers(ctx: WebContext = Depends(web_context)) -> schemas.WorkersOut:
    """Worker processes running tries now (by host and pid) and the schedulers that own them."""
    now = utcnow()
    with read_transaction(ctx.engine) as conn:
        busy = views.workers(conn)
        jobs = views.running_jobs(conn)
    return schemas.WorkersOut(
        workers=[
            schemas.WorkerOut(
                hostname=w.hostname,
                pid=w.pid,
                last_heartbeat=w.last_heartbeat,
                tasks=[_task_out(t) for t in w.tasks],
            )
            for w in busy
        ],
        schedulers=[
            schemas.SchedulerJobOut(
                id=j.id,
                kind=j.kind,
                hostname=j.hostname,
                pid=j.pid,
                started_at=j.started_at,
                heartbeat_at=j.heartbeat_at,
                alive=now - j.heartbeat_at <= SCHEDULER_TIMEOUT,
            )
            for j in jobs
        ],
    )


@router.get("/resources", response_model=schemas.ResourcesOut, dependencies=[Viewer])
def resources(ctx: WebContext = Depends(web_context)) -> schemas.ResourcesOut:
    """Luigi resources (limits from ``[resources]`` in ductwork.toml) and how much of each the
    queued and running tasks hold; pools and their slots."""
    with read_transaction(ctx.engine) as conn:
        used = views.resource_use(conn)
    limits = dict(ctx.settings.resources)
    names = sorted(set(limits) | set(used))
    return schemas.ResourcesOut(
        resources=[schemas.ResourceOut(name=n, limit=limits.get(n), used=used.get(n, 0)) for n in names],
        pools=_pools(ctx),
    )
