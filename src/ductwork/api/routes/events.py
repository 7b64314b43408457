"""Runs started by events: the authenticated webhook, and the messages that were dead-lettered."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ductwork.api.context import WebContext, web_context
from ductwork.api.errors import error_body
from ductwork.api.routes._common import ERRORS, FlowId
from ductwork.api.security import Operator, Viewer
from ductwork.errors import NotFoundError
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
    run_service.defined_flow_graph(ctx.engine, flow_id)  # 404, with a hint, for an unknown or removed flow
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


LetterId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The dead letter's id (as listed).")]


class ReplayIn(BaseModel):
    """What to replay a dead letter with: nothing (its own payload), or a corrected payload."""

    model_config = ConfigDict(extra="forbid")
    payload: dict[str, Any] | None = None


def _letter_of(ctx: WebContext, flow_id: str, letter_id: int) -> messages.DeadLetter:
    """The dead letter, if it is this flow's (another flow's id in the path is a 404 too)."""
    letter = messages.get_dead_letter(ctx.engine, letter_id)
    if letter.flow_id != flow_id:
        raise NotFoundError(f"flow {flow_id!r} has no dead letter {letter_id}")
    return letter


@router.post(
    "/flows/{flow_id}/dead-letters/{letter_id}/replay",
    dependencies=[Operator],
    status_code=202,
    responses={
        202: {"description": "The run the message could not start was queued; the dead letter is removed"},
        422: {
            "description": "The payload still does not fit the flow: the dead letter is kept with the reason "
            "(a corrected payload that does not fit leaves it as it was)"
        },
    },
)
def replay_dead_letter(
    flow_id: FlowId, letter_id: LetterId, body: ReplayIn | None = None, ctx: WebContext = Depends(web_context)
) -> Any:
    """Start the run a dead-lettered message could not, its payload (or ``payload``, a corrected
    one) checked against the flow as it is now. The run keeps the message's id, so the broker
    delivering the message again starts nothing."""
    _letter_of(ctx, flow_id, letter_id)
    corrected = json.dumps(body.payload) if body is not None and body.payload is not None else None
    delivery = messages.replay_dead_letter(ctx.engine, letter_id, payload=corrected)
    if delivery.run is None:
        content = error_body(f"still does not fit: {delivery.reason}", "invalid_parameter")
        content.update(dead_letter_id=letter_id, message_id=delivery.message_id)
        return JSONResponse(content, status_code=422)
    return JSONResponse(
        {
            "status": delivery.status,
            "message_id": delivery.message_id,
            "run_id": delivery.run.run_id,
            "params": dict(delivery.run.params),
        },
        status_code=202,
    )


@router.delete("/flows/{flow_id}/dead-letters/{letter_id}", dependencies=[Operator], status_code=204)
def delete_dead_letter(flow_id: FlowId, letter_id: LetterId, ctx: WebContext = Depends(web_context)) -> Response:
    """Drop a dead letter; its message's receipt stays, so a redelivery starts nothing."""
    _letter_of(ctx, flow_id, letter_id)
    if not messages.drop_dead_letters(ctx.engine, [letter_id], flow_id=flow_id):
        raise NotFoundError(f"flow {flow_id!r} has no dead letter {letter_id}")
    return Response(status_code=204)
