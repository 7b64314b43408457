"""Templates, the HTML error page, and the security headers every page carries."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import MutableMapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse

from ductwork.api.routes.system import platform_fault
from ductwork.api.security import ASGIApp, Principal, Receive, Scope, Send, current_principal
from ductwork.core.masking import mask_secret_keys

WEB_ROOT = Path(str(resources.files("ductwork.web")))
STATIC_DIR = WEB_ROOT / "static"

STATE_COLOURS = {
    "none": "#d1d5db",
    "scheduled": "#c8a97e",
    "queued": "#9ca3af",
    "running": "#38bdf8",
    "success": "#16a34a",
    "failed": "#dc2626",
    "up_for_retry": "#eab308",
    "up_for_reschedule": "#2dd4bf",
    "skipped": "#f472b6",
    "upstream_failed": "#f97316",
}

DOCS_PATH = "/api/v1/docs"
STATIC_PREFIX = "/static/"
CSP = (
    "default-src 'self'; script-src 'self'; worker-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


def _quote(value: Any) -> str:
    return quote(str(value), safe="")


def _json_text(value: Any) -> str:
    """A value as JSON for people to read: plain text (so the page escapes it like any other),
    with ``<``, ``&``, quotes and non-ASCII letters as they are. Jinja's ``tojson`` is for
    scripts: shown as text, it prints ``\\u003c`` for ``<``."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _when(value: dt.datetime | str | None) -> str:
    """A moment as the other pages show one: ``2024-01-31 07:35:07``, in UTC (the column says
    so), not ``2024-01-31T07:35:07.503134+00:00``. Takes a datetime or its ISO text (a
    service's ``to_dict``)."""
    if value is None or value == "":
        return "—"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _masked(value: Any) -> Any:
    """``value`` with what sits under a secret-looking key as ``***``: a run's conf is shown to
    every viewer."""
    return mask_secret_keys(value)


def _markdown(text: str) -> Markup:
    """A flow's documentation (Airflow's ``doc_md``) as HTML: CommonMark with tables, raw HTML
    in it shown as text, and no ``javascript:`` links (markdown-it's defaults). markdown-it-py
    comes with rich; without it the text is shown as written."""
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return Markup('<pre class="doc">') + escape(text) + Markup("</pre>")
    return Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(WEB_ROOT / "templates"))
    templates.env.filters["u"] = _quote
    templates.env.filters["json_text"] = _json_text
    templates.env.filters["masked"] = _masked
    templates.env.filters["when"] = _when
    templates.env.filters["markdown"] = _markdown
    templates.env.globals["state_colours"] = STATE_COLOURS
    templates.env.globals["static_version"] = _static_version()
    return templates


def _static_version() -> str:
    """Changes when any static file changes, so browsers never run stale scripts."""
    newest = max((p.stat().st_mtime_ns for p in STATIC_DIR.rglob("*") if p.is_file()), default=0)
    return format(newest % (1 << 32), "x")


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    principal = getattr(request.state, "principal", None)
    base = {
        "user": principal.user if principal is not None else None,
        "role": principal.role if principal is not None else "",
        "csrf_token": principal.csrf_token if principal is not None else "",
        "can_operate": principal is not None and principal.role in ("operator", "admin"),
        "is_admin": principal is not None and principal.role == "admin",
        "poll_ms": request.app.state.ctx.options.live_poll_ms,
        "platform_fault": platform_fault(request) if principal is not None else None,
    }
    return templates.TemplateResponse(request, name, {**base, **context}, status_code=status_code)


def html_error(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {
        401: "Not logged in",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        422: "Invalid input",
        500: "Server error",
        503: "Database unreachable",
    }
    from ductwork.web.back import back_links

    return page(
        request,
        "error.html",
        status_code=status,
        title=titles.get(status, "Error"),
        message=message,
        back_links=back_links(request, status),
    )


def require_page_role(request: Request, role: str) -> Principal:
    """For pages that change things (the trigger form): the role check the API routes make.
    Returns who is asking."""
    from fastapi import HTTPException

    from ductwork.services.accounts import role_allows

    principal = current_principal(request)
    if not role_allows(principal.role, role):
        raise HTTPException(403, f"user {principal.user.username!r} has the {principal.role} role; this needs {role}")
    return principal


class SecurityHeaders:
    """Adds a strict Content-Security-Policy and friends to every response, and ``Cache-Control:
    no-store`` to all but the static files: pages and API answers carry user data, which the
    browser must not keep (after logging out, Back would show it again)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == DOCS_PATH:  # Swagger UI loads its scripts from a CDN
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _v in headers}
                extra = {
                    b"x-content-type-options": b"nosniff",
                    b"x-frame-options": b"DENY",
                    b"referrer-policy": b"same-origin",
                    b"content-security-policy": CSP.encode(),
                }
                if not scope["path"].startswith(STATIC_PREFIX):
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    headers.append((b"cache-control", b"no-store"))
                headers += [(k, v) for k, v in extra.items() if k not in names]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
