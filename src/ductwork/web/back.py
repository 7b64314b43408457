"""Where an error page leads back to.

Every error page offered one link, "Back to the flows": someone who mistyped a run id on its
flow's page, opened a deleted connection, or hand-edited a filter had to find their way back
from the flows list. An error page now links the page it was reached from, the nearest page
above the address that exists (the run, the flow, the admin list), the same page without its
query when the query was refused, and the flows list.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from starlette.requests import Request

SECTIONS = {
    "assets": "Assets",
    "audit": "the audit log",
    "connections": "Connections",
    "import-errors": "Import errors",
    "luigi": "Task families",
    "pipelines": "Pipelines",
    "pools": "Pools",
    "users": "Users",
    "variables": "Variables",
    "workers": "Workers",
}
"""The lists a page under them leads back to (``/connections/ID/edit`` -> ``/connections``)."""

FLOWS = ("All flows", "/flows")


def back_links(request: Request, status: int) -> list[tuple[str, str]]:
    """(label, address) pairs for an error page, most specific first, without repeats and never
    the failing address itself."""
    here = request.url.path
    links: list[tuple[str, str]] = []
    came_from = _referer(request)
    if came_from is not None:
        links.append(("Back to the page you came from", came_from))
    if request.url.query and status in (400, 415, 422):
        links.append(("This page without its query", here))
    links.extend(_above(request, status))
    links.append(FLOWS)
    seen: set[str] = set()
    unique = []
    for label, href in links:
        full = here + (f"?{request.url.query}" if request.url.query else "")
        if href in seen or href == full:
            continue
        seen.add(href)
        unique.append((label, href))
    return unique


def _referer(request: Request) -> str | None:
    """The page the browser came from, when it is one of this server's pages (the
    ``Referrer-Policy: same-origin`` header sends it only then) and not the login page."""
    referer = request.headers.get("referer")
    if not referer:
        return None
    found = urlsplit(referer)
    if found.netloc != request.url.netloc or not found.path.startswith("/"):
        return None
    if found.path.startswith(("/login", "/api/", "/static/")):
        return None
    return found.path + (f"?{found.query}" if found.query else "")


def _segments(request: Request) -> list[str]:
    """The address's segments, each decoded on its own (a ``/`` inside an id is ``%2F``)."""
    raw = request.scope.get("raw_path") or request.url.path.encode()
    return [unquote(s) for s in raw.decode("ascii", "replace").split("?")[0].split("/") if s]


def _above(request: Request, status: int) -> list[tuple[str, str]]:
    parts = _segments(request)
    if not parts:
        return []
    if parts[0] in SECTIONS and len(parts) > 1:
        return [(f"Back to {SECTIONS[parts[0]]}", f"/{parts[0]}")]
    if parts[0] != "flows" or len(parts) < 2:
        return []
    flow_id = parts[1]
    flow_url = f"/flows/{quote(flow_id, safe='')}"
    run_id = parts[3] if len(parts) >= 4 and parts[2] == "runs" else None
    flow_known, run_known = _known(request, flow_id, run_id, status)
    links = []
    if run_id is not None and run_known and len(parts) > 4:
        links.append((f"Back to run {run_id}", f"{flow_url}/runs/{quote(run_id, safe='')}/graph"))
    if flow_known:
        links.append((f"Back to flow {flow_id}", f"{flow_url}/grid"))
    return links


def _known(request: Request, flow_id: str, run_id: str | None, status: int) -> tuple[bool, bool]:
    """Whether the flow and the run exist, so that no link leads to another "not found". A
    database that cannot be reached (a 503 page) or fails now is asked nothing more."""
    if status == 503:
        return False, False
    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import flows as flow_repo
    from ductwork.store.repo import runs as run_repo

    try:
        with read_transaction(request.app.state.ctx.engine) as conn:
            run = run_repo.get_run(conn, flow_id, run_id) if run_id is not None else None
            flow = run is not None or flow_repo.get_flow(conn, flow_id) is not None
    except Exception:  # the error page must show whatever the database does
        return False, False
    return flow, run is not None
