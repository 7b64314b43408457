"""The pages of the web UI. Each is a thin server-rendered shell; the live parts (grid, graph,
Gantt, logs, Luigi's view) are drawn by ``static/js`` modules from the REST API, so the page and
a script see exactly the same data."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.staticfiles import StaticFiles
from starlette.responses import RedirectResponse, Response

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.query import known_query_parameters
from ductwork.api.routes._common import ID_PATTERN, FlowId, RunId, TaskId, find_run
from ductwork.api.routes.flows import get_flow, list_flows
from ductwork.api.routes.runs import list_runs as list_flow_runs
from ductwork.core.states import RunState, TaskState
from ductwork.errors import NotFoundError, ParameterError
from ductwork.services import runs as run_service
from ductwork.store.engine import read_transaction
from ductwork.store.errors import RunExistsError
from ductwork.store.repo import events as event_repo
from ductwork.store.repo import import_errors as error_repo
from ductwork.store.repo import pools as pool_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.web import admin, forms, login
from ductwork.web.render import STATIC_DIR, SecurityHeaders, html_error, make_templates, page, require_page_role

router = APIRouter(include_in_schema=False)


def install(app: FastAPI) -> None:
    app.state.templates = make_templates()
    app.state.html_error = html_error
    # A query parameter a page does not take is refused, as by the API: a typo'd filter
    # (/flows/etl/runs?stat=failed) showed every run as though it had matched.
    refuse_unknown = [Depends(known_query_parameters)]
    app.include_router(login.router, dependencies=refuse_unknown)
    app.include_router(router, dependencies=refuse_unknown)
    app.include_router(admin.router, dependencies=refuse_unknown)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_middleware(SecurityHeaders)


def _run_url(flow_id: str, run_id: str, view: str = "graph") -> str:
    return f"/flows/{quote(flow_id, safe='')}/runs/{quote(run_id, safe='')}/{view}"


@router.get("/")
def home() -> Response:
    return RedirectResponse("/flows", status_code=303)


@router.get("/flows")
def flows_page(
    request: Request,
    ctx: WebContext = Depends(web_context),
    search: str = Query("", max_length=250),
    tag: str = Query("", max_length=250),
    paused: str = Query("", pattern="^(|yes|no)$"),
) -> Response:
    paused_filter = {"yes": True, "no": False}.get(paused)
    found = list_flows(ctx, search or None, tag or None, paused_filter, False, 1000, 0)
    with read_transaction(ctx.engine) as conn:
        all_tags = sorted({t for f in list_flows(ctx, None, None, None, False, 1000, 0).items for t in f.tags})
        errors = len(error_repo.list_import_errors(conn))
        from ductwork.store.repo import assets as asset_repo

        on_assets = {r.flow_id for r in asset_repo.refs(conn) if r.kind == asset_repo.SCHEDULE}
    return page(
        request,
        "flows.html",
        on_assets=on_assets,
        flows=found.items,
        total=found.total,
        search=search,
        tag=tag,
        paused=paused,
        tags=all_tags,
        import_errors=errors,
        now=dt.datetime.now(dt.UTC),  # a next run already due is said to be due
    )


@router.get("/flows/{flow_id}")
def flow_home(flow_id: FlowId) -> Response:
    return RedirectResponse(f"/flows/{quote(flow_id, safe='')}/grid", status_code=303)


GRID_CELLS = 500_000
"""How many task x run cells the grid page asks for at first. Reading and packing a cell costs
about 1 us, so up to 20,000 tasks it shows 25 runs and a 100,000-task flow its latest 5, within
a second (issue 15); the "runs" menu asks for more."""
GRID_RUN_CHOICES = (10, 25, 50, 100)


def grid_runs(tasks: int) -> tuple[int, list[int]]:
    """The grid page's first number of runs for a flow of ``tasks`` tasks, and the menu's choices."""
    first = max(1, min(25, GRID_CELLS // max(tasks, 1)))
    return first, sorted({first, *GRID_RUN_CHOICES})


@router.get("/flows/{flow_id}/grid")
def grid_page(
    request: Request,
    flow_id: FlowId,
    ctx: WebContext = Depends(web_context),
    shown: int | None = Query(None, alias="runs", ge=1, le=max(GRID_RUN_CHOICES)),
) -> Response:
    """The grid; ``?runs=N`` (what its "runs" menu puts in the address, so that a bookmark or a
    reload keeps the choice) shows the latest N runs instead of as many as fit."""
    flow = get_flow(flow_id, ctx)
    with read_transaction(ctx.engine) as conn:
        latest = run_repo.list_runs(conn, flow_id=flow_id, limit=1).items
    run = schemas.run_out(latest[0]) if latest else None
    runs, choices = grid_runs(flow.tasks)
    if shown is not None:
        runs, choices = shown, sorted({shown, *choices})
    from ductwork.services.messages import count_dead_letters

    return page(
        request,
        "grid.html",
        flow=flow,
        flow_id=flow_id,
        run=run,
        tab="grid",
        runs=runs,
        run_choices=choices,
        dead_letters=count_dead_letters(ctx.engine, flow_id),
    )


RUNS_PER_PAGE = 50
RUN_PAGE_STATES = ("", "queued", "running", "success", "failed")


@router.get("/flows/{flow_id}/runs")
def runs_page(
    request: Request,
    flow_id: FlowId,
    ctx: WebContext = Depends(web_context),
    state: str = Query("", max_length=50),
    base_date: str = Query("", max_length=50),
    page_number: int = Query(1, alias="page", ge=1, le=1_000_000),
) -> Response:
    """Every run of a flow, newest logical date first, a page at a time; by state, and up to a
    base date (that day included), as Airflow's runs list. A hand-edited query that does not fit
    is answered in words (the states there are), not with the pattern it failed."""
    flow = get_flow(flow_id, ctx)
    if state not in RUN_PAGE_STATES:
        return html_error(
            request, 422, f"state {state!r}: expected one of {', '.join(RUN_PAGE_STATES[1:])} (or none for any state)"
        )
    until = None
    if base_date:
        try:
            if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", base_date):
                raise ValueError(base_date)
            until = dt.datetime.fromisoformat(base_date).replace(tzinfo=dt.UTC) + dt.timedelta(days=1)
        except ValueError:
            return html_error(request, 422, f"base date {base_date!r}: expected a date such as 2024-01-31")
    states = [RunState(state)] if state else None
    offset = (page_number - 1) * RUNS_PER_PAGE
    found = list_flow_runs(flow_id, ctx, states, None, None, until, RUNS_PER_PAGE, offset)
    pages = max(1, -(-found.total // RUNS_PER_PAGE))
    filters = {k: v for k, v in (("state", state), ("base_date", base_date)) if v}

    def page_url(number: int) -> str:
        return f"/flows/{quote(flow_id, safe='')}/runs?" + urlencode({**filters, "page": number})

    return page(
        request,
        "runs.html",
        flow=flow,
        flow_id=flow_id,
        tab="runs",
        runs=found,
        state=state,
        base_date=base_date,
        page_number=page_number,
        pages=pages,
        # past the last page (a bookmark from when there were more runs): back to the last one
        newer_url=page_url(min(page_number - 1, pages)) if page_number > 1 else "",
        older_url=page_url(page_number + 1) if page_number < pages else "",
    )


@router.get("/flows/{flow_id}/trigger")
def trigger_form(request: Request, flow_id: FlowId, ctx: WebContext = Depends(web_context)) -> Response:
    require_page_role(request, "operator")
    flow = get_flow(flow_id, ctx)
    return page(
        request,
        "trigger.html",
        flow=flow,
        fields=forms.fields_for(flow.params),
        error=_not_defined(ctx, flow),
        values={},
    )


def _not_defined(ctx: WebContext, flow: schemas.FlowOut) -> str:
    """Why a flow that no file defines now cannot be triggered ("" when it can): the form
    queued its run anyway, which then failed at once (the API refuses it with this reason)."""
    if flow.is_active:
        return ""
    try:
        run_service.defined_flow_graph(ctx.engine, flow.flow_id)
    except NotFoundError as exc:
        return str(exc)
    return ""


@router.post("/flows/{flow_id}/trigger")
async def trigger_submit(request: Request, flow_id: FlowId, ctx: WebContext = Depends(web_context)) -> Response:
    require_page_role(request, "operator")
    form = {k: str(v) for k, v in (await request.form()).items()}
    flow = get_flow(flow_id, ctx)
    try:
        run_service.defined_flow_graph(ctx.engine, flow_id)  # a flow no file defines now: refused, as by the API
        params = forms.posted_params(flow.params, form)
        conf = forms.posted_conf(form.get("conf", ""))
        logical_date = _form_date(form.get("logical_date", ""))
        record = run_service.trigger(
            ctx.engine,
            flow_id,
            params=params,
            conf=conf,
            logical_date=logical_date,
            run_id=form.get("run_id") or None,
            note=form.get("note") or None,
        )
    except (ParameterError, ValueError, RunExistsError, NotFoundError) as exc:  # the form again, with why
        given = forms.given_back(flow.params, form)
        status = 409 if isinstance(exc, RunExistsError) else 404 if isinstance(exc, NotFoundError) else 422
        return page(
            request,
            "trigger.html",
            status_code=status,
            flow=flow,
            fields=forms.fields_for(flow.params, given),
            error=str(exc),
            values=form,
        )
    return RedirectResponse(_run_url(record.flow_id, record.run_id), status_code=303)


def _form_date(text: str) -> dt.datetime | None:
    if not text.strip():
        return None
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ParameterError(f"logical date {text!r}: expected a date and time such as 2024-01-31T00:00") from None


@router.get("/flows/{flow_id}/runs/{run_id}")
def run_home(flow_id: FlowId, run_id: RunId) -> Response:
    return RedirectResponse(_run_url(flow_id, run_id), status_code=303)


def _run_page(request: Request, ctx: WebContext, flow_id: str, run_id: str, template: str, tab: str) -> Response:
    record = find_run(ctx, flow_id, run_id)
    flow: Any = None
    try:
        flow = get_flow(flow_id, ctx)
    except LookupError:  # a run of a flow that is no longer registered still has its history
        flow = None
    reason = ""
    if record.state.is_terminal:
        with read_transaction(ctx.engine) as conn:
            reason = event_repo.run_end_reason(conn, record.pk)
    from ductwork.services.cleanup import delete_refusal

    return page(
        request,
        template,
        run=schemas.run_out(record),
        flow=flow,
        flow_id=flow_id,
        tab=tab,
        run_reason=reason,
        delete_refusal=delete_refusal(ctx.engine, flow_id, run_id),
    )


@router.get("/flows/{flow_id}/runs/{run_id}/diff")
def diff_page(
    request: Request,
    flow_id: FlowId,
    run_id: RunId,
    ctx: WebContext = Depends(web_context),
    other: str = Query("", max_length=250, pattern=ID_PATTERN),
) -> Response:
    """Two runs of a flow side by side: their graphs as recorded, and their code."""
    from ductwork.services.run_diff import diff_runs

    record = find_run(ctx, flow_id, run_id)
    with read_transaction(ctx.engine) as conn:
        recent = [r.run_id for r in run_repo.list_runs(conn, flow_id=flow_id, limit=50).items if r.run_id != run_id]
    if not other and recent:
        other = recent[0]
    if other and other != run_id and other not in recent:
        recent.append(other)  # an older run named in the address: the menu shows what is compared
    diff = schemas.run_diff_out(diff_runs(ctx.engine, flow_id, run_id, other)) if other else None
    return page(
        request,
        "diff.html",
        run=schemas.run_out(record),
        flow_id=flow_id,
        tab="graph",
        recent=recent,
        other=other,
        diff=diff,
    )


@router.get("/flows/{flow_id}/runs/{run_id}/graph")
def graph_page(request: Request, flow_id: FlowId, run_id: RunId, ctx: WebContext = Depends(web_context)) -> Response:
    return _run_page(request, ctx, flow_id, run_id, "graph.html", "graph")


@router.get("/flows/{flow_id}/runs/{run_id}/gantt")
def gantt_page(request: Request, flow_id: FlowId, run_id: RunId, ctx: WebContext = Depends(web_context)) -> Response:
    return _run_page(request, ctx, flow_id, run_id, "gantt.html", "gantt")


@router.get("/flows/{flow_id}/runs/{run_id}/tasks/{task_id}")
def task_page(
    request: Request, flow_id: FlowId, run_id: RunId, task_id: TaskId, ctx: WebContext = Depends(web_context)
) -> Response:
    record = find_run(ctx, flow_id, run_id)
    with read_transaction(ctx.engine) as conn:
        instance = task_repo.get_task_instance(conn, record.pk, task_id)
    if instance is None:
        from ductwork.services import tasks as task_service

        task_service.instances(ctx.engine, record, [task_id])  # raises the 404 with a hint
    unserved = None  # a queued try whose queue no live worker listens on waits for one: say so
    if instance is not None and instance.state == TaskState.QUEUED:
        from ductwork.services.workers import unserved_queues

        queue = instance.queue or "default"
        unserved = queue if unserved_queues(ctx.engine, ctx.settings, [queue]) else None
    return page(
        request,
        "task.html",
        run=schemas.run_out(record),
        flow_id=flow_id,
        task_id=task_id,
        tab="task",
        unserved_queue=unserved,
    )


@router.get("/assets")
def assets_page(request: Request, ctx: WebContext = Depends(web_context)) -> Response:
    from ductwork.store.repo import assets as asset_repo

    with read_transaction(ctx.engine) as conn:
        found = asset_repo.list_assets(conn)
        refs = asset_repo.refs(conn)
    producers: dict[str, set[str]] = {}
    consumers: dict[str, set[str]] = {}
    for ref in refs:
        (producers if ref.kind == asset_repo.OUTLET else consumers).setdefault(ref.uri, set()).add(ref.flow_id)
    return page(request, "assets.html", assets=found, producers=producers, consumers=consumers)


@router.get("/assets/detail")
def asset_page(
    request: Request, ctx: WebContext = Depends(web_context), uri: str = Query(..., max_length=700)
) -> Response:
    from ductwork.services.assets import asset_detail, uri_named

    return page(request, "asset.html", asset=asset_detail(ctx.engine, uri_named(ctx.engine, uri)))


@router.get("/luigi")
def luigi_page(request: Request) -> Response:
    return page(request, "luigi.html")


@router.get("/import-errors")
def import_errors_page(request: Request, ctx: WebContext = Depends(web_context)) -> Response:
    with read_transaction(ctx.engine) as conn:
        errors = error_repo.list_import_errors(conn)
    return page(request, "import_errors.html", errors=errors)


@router.get("/workers")
def workers_page(request: Request, ctx: WebContext = Depends(web_context)) -> Response:
    from ductwork.services import workers as worker_service

    found = worker_service.list_workers(ctx.engine, ctx.settings, include_stopped=True)
    return page(request, "workers.html", workers=found.workers, unserved=found.unserved, settings=ctx.settings)


@router.get("/pools")
def pools_page(request: Request, ctx: WebContext = Depends(web_context)) -> Response:
    with read_transaction(ctx.engine) as conn:
        descriptions = {p.name: p.description for p in pool_repo.list_pools(conn)}
        usage = pool_repo.pool_usage(conn)
    pools = [schemas.pool_out(u, descriptions.get(u.name, "")) for u in usage]
    return page(request, "pools.html", pools=pools, resources=dict(ctx.settings.resources))


@router.get("/pipelines")
def pipelines_page(request: Request, ctx: WebContext = Depends(web_context)) -> Response:
    """Declarative pipelines as the AWS Data Pipeline console listed them, each object's latest
    instances with their attempts a click away."""
    from ductwork.services import pipelines as pipeline_service

    summaries = pipeline_service.list_pipelines(ctx.engine)
    details = [pipeline_service.describe(ctx.engine, s.name, runs=5) for s in summaries]
    now = dt.datetime.now(dt.UTC)
    due = {s.name for s in summaries if s.next_run is not None and s.next_run <= now}  # as the flows page says
    return page(request, "pipelines.html", pipelines=details, due=due)


def _audit_day(text: str, name: str) -> dt.date | None:
    """A day of the audit page's from/until boxes; a bad one is refused naming the box."""
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ParameterError(f"{name} {text!r}: expected a day such as 2024-06-01") from None


def audit_actions() -> list[str]:
    """What the action box suggests: each family (``run.``) then each action, as recorded by the
    API and UI (``api.audit.ACTIONS``), the CLI (``db reset`` is the CLI's alone) and the
    scheduler's retention."""
    from ductwork.api.audit import ACTIONS

    actions = set(ACTIONS.values()) | {"flow.pause", "flow.unpause", "retention.clean", "db.reset"}
    families = {a.split(".")[0] + "." for a in actions}
    return sorted(families) + sorted(actions)


@router.get("/audit")
def audit_page(
    request: Request,
    ctx: WebContext = Depends(web_context),
    actor: str = Query("", max_length=250),
    action: str = Query("", max_length=64),
    target: str = Query("", max_length=500),
    via: str = Query("", pattern="^(|cli|api|ui|scheduler)$"),
    since: str = Query("", max_length=32),
    until: str = Query("", max_length=32),
    offset: int = Query(0, ge=0, le=1_000_000_000),
) -> Response:
    """Admins only: the changes made through the CLI, the API and the UI, filtered by who, what
    (an action or its family), the object (target prefix), how and when (UTC days, both included)."""
    from ductwork.api.routes.accounts import list_users
    from ductwork.services import audit

    require_page_role(request, "admin")
    first, last = _audit_day(since, "from"), _audit_day(until, "until")
    filters = {
        "actor": actor or None,
        "action": action or None,
        "target": target or None,
        "via": via or None,
        "since": since or None,
        "until": until or None,
    }
    found = audit.entries(
        ctx.engine,
        actor=actor or None,
        action=action or None,
        target=target or None,
        via=via or None,
        since=dt.datetime.combine(first, dt.time(), dt.UTC) if first else None,
        until=dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC) if last else None,
        offset=offset,
    )
    kept = {k: v for k, v in filters.items() if v}
    older = urlencode({**kept, "offset": offset + len(found.items)})

    def refine(key: str, value: str) -> str:
        """This page narrowed to ``key=value`` (a click on a name, an action or a target)."""
        return "/audit?" + urlencode({**kept, key: value})

    return page(
        request,
        "audit.html",
        page=found,
        filters=filters,
        filtered=bool(kept),
        older_query=older,
        actors=sorted({u.username for u in list_users(ctx)} | {"scheduler"}),
        actions=audit_actions(),
        refine=refine,
    )


@router.get("/account")
def account_page(request: Request) -> Response:
    return page(request, "account.html")
