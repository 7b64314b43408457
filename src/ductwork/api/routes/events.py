"""Runs started by events: the authenticated webhook, and the messages that were dead-lettered."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from ductwork.api.context import WebContext, web_context
from ductwork.api.errors import error_body
from ductwork.api.routes._common import ERRORS, FlowId
from ductwork.api.security import Operator, Viewer
from ductwork.services import messages
from ductwork.services import runs as run_service

router = APIRouter(tags=["events"], responses=ERRORS)

WEBHOOK = "webhook"
MAX_KEY = 1024
"""The longest ``Idempotency-Key`` taken; past ``messages.MAX_ID`` characters it is hashed, as a
broker's long message ids are (ADR 0014), rather than refused."""


@router.post(
    "/flows/{flow_id}/events",
    dependencies=[Operator],
    status_code=202,
    responses={
        200: {"description": "The same event was received before: nothing was started"},
        202: {"description": "A run was queued with the event's payload as its parameters"},
        422: {"description": "The payload does not fit the flow's parameters: dead-lettered with the reason"},
    },
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
            "description": "The run's parameters, as a JSON object.",
        }
    },
)
async def post_event(
    flow_id: FlowId,
    request: Request,
    ctx: WebContext = Depends(web_context),
    idempotency_key: str | None = Header(
        None,
        max_length=MAX_KEY,
        description="The event's id: sent again, no new run (a key longer than 200 characters is kept hashed).",
    ),
) -> Any:
    """Start a run of the flow from an event: its JSON body becomes the run's parameters. An
    event sent again with the same ``Idempotency-Key`` (or, without one, the same body) starts
    nothing; a body that does not fit the flow's typed parameters is dead-lettered (422)."""
    run_service.flow_graph(ctx.engine, flow_id)  # 404, with a hint, for an unknown flow
    body = await request.body()
    delivery = await run_in_threadpool(
        messages.receive, ctx.engine, flow_id, source=WEBHOOK, message_id=idempotency_key or "", payload=body
    )
    if delivery.status == messages.DEAD_LETTERED:
        content = error_body(f"dead-lettered: {delivery.reason}", "invalid_parameter")
        content.update(dead_letter_id=delivery.dead_letter_id, message_id=delivery.message_id)
        return JSONResponse(content, status_code=422)
    out: dict[str, Any] = {"status": delivery.status, "message_id": delivery.message_id}
    if delivery.run is not None:
        out.update(run_id=delivery.run.run_id, params=dict(delivery.run.params))
    return JSONResponse(out, status_code=202 if delivery.status == messages.STARTED else 200)


@router.get("/flows/{flow_id}/dead-letters", dependencies=[Viewer])
def list_dead_letters(
    flow_id: FlowId, ctx: WebContext = Depends(web_context), limit: int = Query(100, ge=1, le=1000)
) -> dict[str, Any]:
    """Messages for this flow that could not start a run, newest first, with the reason."""
    letters = messages.list_dead_letters(ctx.engine, flow_id, limit=limit)
    items = [
        {
            "id": d.id,
            "source": d.source,
            "message_id": d.message_id,
            "payload": d.payload,
            "reason": d.reason,
            "received_at": d.received_at.isoformat(),
        }
        for d in letters
    ]
    return {"items": items, "total": len(items)}
