"""Task instances of a run: list, detail, tries, logs (streamed while running), results, clear, mark."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS, MAX_OFFSET, FlowId, RunId, TaskId, find_run
from ductwork.api.routes.system import platform_fault
from ductwork.api.security import Operator, Viewer
from ductwork.core.json_text import json_object
from ductwork.core.mapping import OUTCOME as MAPPED_OUTCOME
from ductwork.core.masking import mask_values_under_secret_keys
from ductwork.core.states import TaskState
from ductwork.core.task_order import instances_under_their_task, reorder
from ductwork.errors import NotFoundError
from ductwork.services import tasks as task_service
from ductwork.services.shown_secrets import known_secrets, mask_shown
from ductwork.store.engine import read_transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import events as event_repo
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import results as result_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.store.repo import views
from ductwork.store.results import SqlResults

router = APIRouter(tags=["tasks"], responses=ERRORS)

PREVIEW_CHARS = 10_000
INLINE_BYTES = 64_000
BASE = "/flows/{flow_id}/runs/{run_id}/tasks"


TOTAL_HEADER = "X-Total-Count"


@router.get(
    BASE,
    response_model=list[schemas.TaskOut],
    dependencies=[Viewer],
    responses={
        200: {
            "headers": {
                TOTAL_HEADER: {
                    "description": "How many task instances match, over every page.",
                    "schema": {"type": "integer"},
                }
            }
        }
    },
)
def list_tasks(
    flow_id: FlowId,
    run_id: RunId,
    response: Response,
    ctx: WebContext = Depends(web_context),
    state: list[TaskState] | None = Query(None),
    limit: int = Query(1000, ge=1, le=100_000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> list[schemas.TaskOut]:
    """A run's task instances in graph order, a mapped task's instances (``t[0]``...) right
    after their task (only some states with ``state``), a page of
    ``limit`` from ``offset``. The list is a bare array (the web UI reads it so); how many match
    in all is in the ``X-Total-Count`` header, so a script can tell a run of 5,000 tasks from
    the first 1,000 of them."""
    record = find_run(ctx, flow_id, run_id)
    with read_transaction(ctx.engine) as conn:
        found = task_repo.list_task_instances(conn, record.pk, states=state or None)
    order = instances_under_their_task([t.task_id for t in found])
    if order is not None:
        found = reorder(found, order)
    response.headers[TOTAL_HEADER] = str(len(found))
    return [schemas.task_out(t) for t in found[offset : offset + limit]]


def _instance(ctx: WebContext, record: RunRecord, task_id: str) -> Any:
    with read_transaction(ctx.engine) as conn:
        instance = task_repo.get_task_instance(conn, record.pk, task_id)
    if instance is None:
        task_service.instances(ctx.engine, record, [task_id])  # raises the 404 with a "did you mean"
    return instance


def shown_definition(definition: dict[str, Any]) -> dict[str, Any]:
    """A task's recorded definition as a viewer may read it: a parameter its class declared
    private or hidden (Luigi's ``visibility``, which keeps it off Luigi's scheduler and UI) and
    one named like a secret (``db_password``, ``api_token``: as a run's params are shown) are
    ``***``. The record keeps the values: a worker rebuilds the task from them."""
    from ductwork.core.class_flow import HIDDEN_PARAMS
    from ductwork.core.masking import MASK, mask_secret_keys

    params = definition.get("params")
    if not isinstance(params, dict) or not params:
        return definition
    hidden = set((definition.get("extra") or {}).get(HIDDEN_PARAMS) or ())
    shown = {k: MASK if k in hidden and v not in (None, "") else v for k, v in params.items()}
    return {**definition, "params": mask_secret_keys(shown)}


@router.get(BASE + "/{task_id}", response_model=schemas.TaskDetailOut, dependencies=[Viewer])
def get_task(
    flow_id: FlowId, run_id: RunId, task_id: TaskId, ctx: WebContext = Depends(web_context)
) -> schemas.TaskDetailOut:
    """A task instance with its recorded definition (operator, parameters, retries, pool...), and
    why it is in its state: a task the run's cancel skipped before it ran has no try to say so."""
    record = find_run(ctx, flow_id, run_id)
    instance = _instance(ctx, record, task_id)
    with read_transaction(ctx.engine) as conn:
        definition = views.task_definition(conn, record.pk, task_id) or {}
        downstream = views.downstream_of(conn, record.pk, task_id)
        changes = event_repo.list_state_events(conn, record.pk, task_id=task_id)
    reason = next((e.reason for e in reversed(changes) if e.new == instance.state.value), "")
    return schemas.TaskDetailOut(
        **schemas.task_out(instance).model_dump(),
        definition=schemas.plain(shown_definition(definition)),
        downstream=downstream,
        state_reason=reason,
    )


@router.get(BASE + "/{task_id}/tries", response_model=list[schemas.TryOut], dependencies=[Viewer])
def list_tries(
    flow_id: FlowId, run_id: RunId, task_id: TaskId, ctx: WebContext = Depends(web_context)
) -> list[schemas.TryOut]:
    """Every try of the task, with error, traceback and rendered arguments."""
    record = find_run(ctx, flow_id, run_id)
    return [schemas.try_out(t) for t in task_service.tries(ctx.engine, record, task_id)]


def _check_log(ctx: WebContext, record: RunRecord, task_id: str, try_number: int | None) -> None:
    """The errors ``log_chunks`` would raise on first read, raised now, while a 404 can still be sent."""
    task_service.logged_try(ctx.engine, record, task_id, try_number)


@router.get(
    BASE + "/{task_id}/logs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "The log, streamed while the try runs."}},
    dependencies=[Viewer],
)
def task_log(
    request: Request,
    flow_id: FlowId,
    run_id: RunId,
    task_id: TaskId,
    ctx: WebContext = Depends(web_context),
    try_number: int | None = Query(None, ge=1, le=1_000_000, description="Which try (default: the latest)."),
    follow: bool = Query(False, description="Keep the response open and stream new output until the try ends."),
) -> StreamingResponse:
    """The log of a try as plain text; with ``follow``, a chunked response that grows while the
    try runs (read it with a streaming client: ``curl -N``, ``fetch`` with a reader). Followed
    without a ``try_number``, a task that has not started yet is waited for (the answer's
    first line says so) and its first try streamed from its start."""
    record = find_run(ctx, flow_id, run_id)
    chunks: Iterator[str]
    if follow and try_number is None:
        chunks = task_service.followed_log(ctx.engine, record, task_id)
    else:
        try:
            _check_log(ctx, record, task_id, try_number)
        except NotFoundError as exc:
            fault = platform_fault(request)
            if fault is None:
                raise
            raise NotFoundError(f"{exc}: the scheduler cannot start tries ({fault})") from None
        chunks = task_service.log_chunks(ctx.engine, record, task_id, try_number, follow=follow)
    return StreamingResponse(
        _in_own_threads(request, chunks) if follow else _utf8(chunks),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Accel-Buffering": "no"},
    )


def _utf8(chunks: Iterator[str]) -> Iterator[bytes]:
    for chunk in chunks:
        yield chunk.encode("utf-8")


LIVE_TAILS = 32
"""Threads set aside for followed logs. A followed log waits in a thread between chunks (the
service polls the file); in the shared thread pool, a few dozen open tails would leave no thread
for other requests, so they get their own limiter and queue behind each other instead."""


async def _in_own_threads(request: Request, chunks: Iterator[str]) -> AsyncIterator[bytes]:
    limiter = getattr(request.app.state, "log_limiter", None)
    if limiter is None:
        limiter = request.app.state.log_limiter = anyio.CapacityLimiter(LIVE_TAILS)
    stopping = getattr(request.app.state, "stopping", None)
    done = object()
    while True:
        chunk = await anyio.to_thread.run_sync(next, chunks, done, limiter=limiter)
        if chunk is done:
            return
        if stopping is not None and stopping.is_set():
            # The server stops: the stream ends here, said, before uvicorn's grace period is over
            # (it then cancelled the request, logged as "Exception in ASGI application").
            yield b"\n*** the web server is stopping: follow the log again to read on\n"
            return
        if chunk:
            yield str(chunk).encode("utf-8")


@router.get(BASE + "/{task_id}/results", response_model=list[schemas.ResultOut], dependencies=[Viewer])
def task_results(
    flow_id: FlowId, run_id: RunId, task_id: TaskId, ctx: WebContext = Depends(web_context)
) -> list[schemas.ResultOut]:
    """The results (XCom) the task passed downstream, decoded, with every secret the server knows of
    masked; large values only as a preview."""
    record = find_run(ctx, flow_id, run_id)
    _instance(ctx, record, task_id)
    with read_transaction(ctx.engine) as conn:
        # How a mapped instance's try ended is the engine's note to its collector, not a result.
        stored = [r for r in result_repo.list_results(conn, record.pk, task_id) if r.key != MAPPED_OUTCOME]
    backend = SqlResults(ctx.engine)
    secrets = known_secrets(ctx.settings, ctx.engine) if stored else None
    if secrets is not None:  # the run's "password" conf, *** on its page, is not shown in a result either
        mask_values_under_secret_keys(record.params, secrets)
        mask_values_under_secret_keys(record.conf, secrets)
    out = []
    for item in stored:
        value: Any = None
        try:
            assert secrets is not None
            value = mask_shown(secrets, item.key, schemas.plain(backend.pull(record.key, task_id, item.key)))
            text = json.dumps(value, indent=1, ensure_ascii=False)
        except Exception as exc:  # a serializer this server lacks: show why instead of failing
            text = f"(cannot be shown: {exc})"
            value = None
        out.append(
            schemas.ResultOut(
                key=item.key,
                serializer=item.serializer,
                size=item.size,
                value=value if item.size <= INLINE_BYTES else None,
                preview=text[:PREVIEW_CHARS],
                truncated=len(text) > PREVIEW_CHARS,
            )
        )
    return out


@router.post(BASE + "/clear", response_model=schemas.ClearOut, dependencies=[Operator])
def clear_tasks(
    flow_id: FlowId, run_id: RunId, body: schemas.ClearIn, ctx: WebContext = Depends(web_context)
) -> schemas.ClearOut:
    """Run tasks again (with their downstream and/or upstream closure); ``dry_run`` lists what
    would be cleared and changes nothing."""
    record = find_run(ctx, flow_id, run_id)
    ids, elsewhere = task_service.clear_across(
        ctx.engine, record, body.task_ids, downstream=body.downstream, upstream=body.upstream, dry_run=body.dry_run
    )
    others = [
        schemas.OtherRunTasksOut(flow_id=o.record.flow_id, run_id=o.record.run_id, task_ids=o.task_ids)
        for o in elsewhere
    ]
    return schemas.ClearOut(task_ids=ids, dry_run=body.dry_run, other_runs=others)


@router.post(BASE + "/mark", response_model=schemas.TaskChangeOut, dependencies=[Operator])
def mark_tasks(
    flow_id: FlowId, run_id: RunId, body: schemas.MarkIn, ctx: WebContext = Depends(web_context)
) -> schemas.TaskChangeOut:
    """Set tasks to success, failed or skipped by hand; ``dry_run`` lists what would change."""
    record = find_run(ctx, flow_id, run_id)
    ids = task_service.mark(
        ctx.engine,
        record,
        body.task_ids,
        TaskState(body.state),
        downstream=body.downstream,
        upstream=body.upstream,
        dry_run=body.dry_run,
    )
    return schemas.TaskChangeOut(task_ids=ids, dry_run=body.dry_run)


@router.get("/flows/{flow_id}/tasks/{task_id}/rendered", response_model=dict[str, Any], dependencies=[Viewer])
def render_task(
    flow_id: FlowId,
    task_id: TaskId,
    ctx: WebContext = Depends(web_context),
    logical_date: schemas.SaneDate | None = Query(None, description="The run's logical date (default: now)."),
    params: str | None = Query(None, max_length=100_000, description='Run parameters as a JSON object: {"n": 3}.'),
) -> dict[str, Any]:
    """``ductwork tasks render``: the task's templated fields as a try for ``logical_date`` would
    render them, by field name; secrets masked. The flow's code runs in a child process of the
    server (the server itself never imports it)."""
    import os

    from ductwork.engine.parsing import render_task as render_in_child
    from ductwork.errors import ParameterError
    from ductwork.services import runs as run_service

    values = json_object(params, "params", example='{"n": 3}')
    run_service.flow_graph(ctx.engine, flow_id)  # 404 with a hint for an unknown flow
    with read_transaction(ctx.engine) as conn:
        flow = flow_repo.get_flow(conn, flow_id)
    if flow is None or not flow.fileloc:
        raise ParameterError(f"flow {flow_id!r} has no file recorded; it cannot be rendered here")
    settings = ctx.settings
    environ = {
        **os.environ,
        "DUCTWORK_HOME": str(settings.home),
        "DUCTWORK_DATABASE_URL": ctx.engine.url.render_as_string(hide_password=False),
        "DUCTWORK_SECRETS_BACKENDS": settings.secrets_backends,
        "DUCTWORK_FERNET_KEY": settings.fernet_key,
    }
    if settings.config_path is not None:
        environ["DUCTWORK_CONFIG"] = str(settings.config_path)
    when = logical_date.isoformat() if logical_date is not None else None
    return schemas.plain(
        render_in_child(flow.fileloc, flow_id, task_id, logical_date=when, params=values, environ=environ)
    )
