"""Health (public), import errors, and who am I."""

from __future__ import annotations

import datetime as dt
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError, ProgrammingError

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.errors import schema_mismatch
from ductwork.api.routes._common import ERRORS
from ductwork.api.security import Principal, Viewer
from ductwork.errors import DuctworkError
from ductwork.store.engine import read_transaction
from ductwork.store.records import SchedulerJobRecord
from ductwork.store.repo import import_errors as error_repo
from ductwork.store.repo import jobs as job_repo
from ductwork.store.tables import scheduler_jobs

router = APIRouter(tags=["system"])

SCHEDULER_TIMEOUT = dt.timedelta(seconds=30)


def ductwork_version() -> str:
    try:
        return version("ductwork")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


@router.get("/health", response_model=schemas.HealthOut, responses={503: {"model": schemas.HealthOut}})
def health(request: Request, ctx: WebContext = Depends(web_context)) -> JSONResponse:
    """Whether the server can reach its database and a scheduler is heartbeating; with a
    scheduler in the same process (``standalone``), what it says of itself (waiting for the
    database, a platform fault). No login needed."""
    own = _own_scheduler(request)
    waiting = own is not None and own.state == "waiting_for_database"
    detail = (
        own.detail if waiting else (f"platform fault: {own.platform_fault}" if own and own.platform_fault else None)
    )
    try:
        with read_transaction(ctx.engine) as conn:
            alive = job_repo.alive_jobs(conn, "scheduler", timeout=SCHEDULER_TIMEOUT)
            # With none alive, the newest heartbeat of any scheduler: when it stopped or died
            # (null said nothing of it; Airflow's health gives an unhealthy scheduler's too).
            last_beat = (
                alive[0].heartbeat_at
                if alive
                else conn.execute(
                    sa.select(sa.func.max(scheduler_jobs.c.heartbeat_at)).where(scheduler_jobs.c.kind == "scheduler")
                ).scalar()
            )
    except DuctworkError:
        body = schemas.HealthOut(
            status="degraded",
            database="unreachable",
            scheduler="waiting_for_database" if waiting else "unknown",
            scheduler_detail=detail,
            version=ductwork_version(),
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    except (ProgrammingError, OperationalError) as exc:
        # Tables dropped under the server, or a schema a newer Ductwork migrated: a monitor
        # gets the 503 a broken database deserves (it was a 500 with no reason).
        mismatch = schema_mismatch(ctx.engine, exc)
        if mismatch is None:
            raise
        body = schemas.HealthOut(
            status="degraded",
            database="schema_mismatch",
            database_detail=str(mismatch),
            scheduler="waiting_for_database" if waiting else "unknown",
            scheduler_detail=detail,
            version=ductwork_version(),
        )
        return JSONResponse(body.model_dump(mode="json"), status_code=503)
    if detail is None and (fault := _fault_of(alive)):
        detail = f"platform fault: {fault}"
    body = schemas.HealthOut(
        status="degraded" if detail else "ok",
        database="ok",
        scheduler="waiting_for_database" if waiting else "alive" if alive else "not_running",
        scheduler_heartbeat=last_beat,
        scheduler_detail=detail,
        version=ductwork_version(),
    )
    return JSONResponse(body.model_dump(mode="json"))


@router.head("/health", include_in_schema=False)
def health_head(request: Request, ctx: WebContext = Depends(web_context)) -> Response:
    """The same status code as GET, without the body: uptime monitors and ``curl -I`` send
    HEAD, and were answered 405 (Flask, which Airflow's health check runs on, answers it)."""
    answer = health(request, ctx)
    return Response(status_code=answer.status_code, media_type="application/json")


def platform_fault(request: Request) -> str | None:
    """What keeps a scheduler from starting any try: a log folder or journal it cannot write, a
    full disk; this process's (``standalone``), or else what a live scheduler wrote with its
    heartbeat. The web UI shows it on every page and a log asked for of a task that has not
    started says it: runs sat queued with "no log yet: the task has not started", the reason
    only in the scheduler's log."""
    own = _own_scheduler(request)
    fault = getattr(own, "platform_fault", None) if own is not None else None
    if fault:
        return str(fault)
    ctx = getattr(request.app.state, "ctx", None)
    if ctx is None:
        return None
    try:
        with read_transaction(ctx.engine) as conn:
            return _fault_of(job_repo.alive_jobs(conn, "scheduler", timeout=SCHEDULER_TIMEOUT))
    except DuctworkError:
        return None  # the page says what is wrong with the database itself


def _fault_of(alive: list[SchedulerJobRecord]) -> str | None:
    """The platform faults live schedulers in other processes wrote with their heartbeat."""
    faults = [f"{job.fault} (scheduler {job.hostname}, pid {job.pid})" for job in alive if job.fault]
    return "; ".join(faults) if faults else None


def _own_scheduler(request: Request) -> Any:
    """The status of the scheduler running in this process (``standalone`` sets
    ``app.state.scheduler``), or None."""
    status = getattr(getattr(request.app.state, "scheduler", None), "status", None)
    return status() if callable(status) else None


@router.get("/import-errors", response_model=list[schemas.ImportErrorOut], responses=ERRORS, dependencies=[Viewer])
def import_errors(ctx: WebContext = Depends(web_context)) -> list[schemas.ImportErrorOut]:
    """Flow files that failed to import, with file, line and traceback."""
    with read_transaction(ctx.engine) as conn:
        return [schemas.import_error_out(e) for e in error_repo.list_import_errors(conn)]


@router.get("/me", response_model=schemas.MeOut, responses=ERRORS)
def me(principal: Principal = Viewer) -> schemas.MeOut:
    user = principal.user
    return schemas.MeOut(
        username=user.username,
        role=user.role,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        via=principal.via,
    )
