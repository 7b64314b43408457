"""Remote workers (Celery, Kubernetes): who runs what, and queues that nobody serves."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS
from ductwork.api.security import Viewer
from ductwork.services import workers as worker_service

router = APIRouter(tags=["workers"], responses=ERRORS)


class WorkerOut(BaseModel):
    name: str
    hostname: str
    kind: str
    queues: list[str]
    concurrency: int
    slots_used: int
    current: list[str]
    """The tries it runs now ("flow/run task #try")."""
    started_at: dt.datetime
    heartbeat_at: dt.datetime
    state: str
    """running, lost (silent for longer than worker_lost_after) or stopped."""


class WorkersOut(BaseModel):
    workers: list[WorkerOut]
    unserved_queues: dict[str, int]
    """Queues with queued tries and no live worker listening, with how many tries wait."""


def workers_out(found: worker_service.Workers) -> WorkersOut:
    return WorkersOut(
        workers=[
            WorkerOut(
                name=w.name,
                hostname=w.hostname,
                kind=w.kind,
                queues=list(w.queues),
                concurrency=w.concurrency,
                slots_used=w.slots_used,
                current=list(w.current),
                started_at=w.started_at,
                heartbeat_at=w.heartbeat_at,
                state=w.state,
            )
            for w in found.workers
        ],
        unserved_queues=found.unserved,
    )


@router.get("/workers", response_model=WorkersOut, dependencies=[Viewer])
def list_workers(include_stopped: bool = False, ctx: WebContext = Depends(web_context)) -> WorkersOut:
    """Remote workers with their host, queues, slots in use, current tries and last heartbeat."""
    return workers_out(worker_service.list_workers(ctx.engine, ctx.settings, include_stopped=include_stopped))
