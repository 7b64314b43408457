"""Who is asking, and may they: authentication for every route, CSRF for cookie writes, roles.

One ASGI middleware sits in front of the whole application (API, pages, docs). It lets through
only the public paths (the health check, the login page and static files); every other request
must carry either an API token (``Authorization: Bearer dwt_...``) or a session cookie. A write
(any method but GET/HEAD/OPTIONS) made with a session cookie must also carry the session's CSRF
token, in the ``X-CSRF-Token`` header (the UI's scripts) or a ``csrf_token`` form field (its
forms). Token requests need no CSRF token: a browser never adds an ``Authorization`` header on
its own. Roles are checked by route dependencies (``Viewer``, ``Operator``, ``Admin``). See
ADR 0004.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, quote, urlsplit

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from ductwork.api.context import WebContext
from ductwork.api.errors import connection_lost, error_body, schema_mismatch
from ductwork.errors import DuctworkError
from ductwork.services import accounts
from ductwork.store.engine import unreachable
from ductwork.store.repo.users import UserRecord

SESSION_COOKIE = "ductwork_session"
LOGIN_CSRF_COOKIE = "ductwork_login_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/api/v1/health", "/login", "/metrics"})
"""``/metrics`` is for Prometheus, which has no session: it checks the ``metrics_token`` setting
itself when one is set (``ductwork.api.metrics``; ADR 0013)."""
PUBLIC_PREFIXES = ("/static/",)
MAX_FORM_BYTES = 1 << 20

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Principal:
    user: UserRecord
    via: Literal["session", "token"]
    csrf_token: str | None = None

    @property
    def role(self) -> str:
        return self.user.role


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def resolve(ctx: WebContext, authorization: str | None, session_id: str | None) -> Principal | None:
    """The principal behind a request's credentials, or None. A bad bearer token is not
    rescued by a cookie: a script must learn that its token is wrong."""
    if authorization is not None:
        scheme, _, secret = authorization.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        user = accounts.user_for_token(ctx.engine, secret.strip())
        return Principal(user, "token") if user is not None else None
    if session_id:
        session = accounts.find_session(ctx.engine, session_id)
        if session is not None:
            return Principal(session.user, "session", session.csrf_token)
    return None


def _why_refused(authorization: str | None) -> str:
    """What was wrong with the credentials a script sent. "Authentication required" alone, to a
    script that did send a token, reads as if the header had been lost on the way."""
    if authorization is None:
        return (
            "authentication required: send 'Authorization: Bearer <token>' (ductwork tokens create) or log in at /login"
        )
    scheme, space, secret = authorization.partition(" ")
    if scheme.lower() != "bearer":
        # a header without a scheme is likely the bare token: it is not echoed back
        which = f"uses the {scheme!r} scheme" if space and scheme.isalnum() and len(scheme) <= 20 else "has no scheme"
        return (
            f"the Authorization header {which}, which this API does not accept: "
            "send 'Authorization: Bearer <token>' with an API token (ductwork tokens create)"
        )
    if not secret.strip():
        return "the Authorization header holds no token: send 'Authorization: Bearer <token>' (ductwork tokens create)"
    return (
        "the API token is not valid: it is unknown, revoked or expired, or its user was deleted "
        "(ductwork tokens create makes a new one)"
    )


def _unauthenticated(scope: Scope, authorization: str | None = None) -> Response:
    path = scope["path"]
    if path.startswith("/api/"):
        return JSONResponse(
            error_body(_why_refused(authorization), "unauthenticated"),
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    if path == "/logout":  # the session had already ended: the user is logged out, nothing to come back to
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response
    if scope.get("method", "GET") in SAFE_METHODS:
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + (f"?{query}" if query else "")
    else:
        target = _referring_page(scope) or "/flows"
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def _referring_page(scope: Scope) -> str | None:
    """The page (path and query) of this site that sent a form whose session has expired.

    After the login the browser goes to ``next`` with a GET: the form's own action may answer
    only POST (``/users/dana/role``), so the page the form was on is where to come back to."""
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope.get("headers", [])}
    referer = urlsplit(headers.get("referer", ""))
    if not referer.path.startswith("/") or referer.netloc != headers.get("host") or referer.path == "/login":
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


def unreachable_response(request: Request, message: str, code: str = "database_unreachable") -> Response:
    """503 for a database outage (or a schema that is not this server's: ``code``
    ``schema_mismatch``): an HTML page for a person's page, JSON for the API."""
    html_error = getattr(request.app.state, "html_error", None)
    if html_error is not None and not request.url.path.startswith("/api/"):
        response: Response = html_error(request, 503, message)
    else:
        response = JSONResponse(error_body(message, code), status_code=503)
    response.headers["Retry-After"] = "5"
    return response


def _forbidden_csrf() -> Response:
    return JSONResponse(
        error_body(
            "CSRF token missing or wrong: a write made with a session cookie must send the page's CSRF token "
            "(X-CSRF-Token header or csrf_token form field); scripts should use an API token instead",
            "csrf_failed",
        ),
        status_code=403,
    )


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), False
        body = message.get("body", b"")
        size += len(body)
        if size > MAX_FORM_BYTES:
            return b"", False
        chunks.append(body)
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def same_token(given: str | None, expected: str | None) -> bool:
    """Whether ``given`` is ``expected``, in constant time. Compared as bytes: ``compare_digest``
    raises TypeError for a str beyond ASCII, and what a client sends may hold anything."""
    return bool(given and expected) and hmac.compare_digest(_bytes(str(given)), _bytes(str(expected)))


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class AuthMiddleware:
    """Authenticates every non-public request and checks CSRF on cookie-authenticated writes."""

    def __init__(self, app: ASGIApp, ctx: WebContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            principal = await run_in_threadpool(
                resolve, self.ctx, request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
            )
        except DuctworkError as exc:  # the database is down: say so rather than "not logged in"
            await unreachable_response(request, str(exc))(scope, receive, send)
            return
        except (OperationalError, InterfaceError, ProgrammingError) as exc:
            if not connection_lost(exc):
                # Tables dropped under the server, or migrated by a newer Ductwork: every
                # request failed here with a 500 before reaching a route.
                mismatch = schema_mismatch(self.ctx.engine, exc)
                if mismatch is None:
                    raise
                await unreachable_response(request, str(mismatch), "schema_mismatch")(scope, receive, send)
                return
            message = str(unreachable(self.ctx.engine.url, exc))
            await unreachable_response(request, message)(scope, receive, send)
            return
        if principal is None:
            await _unauthenticated(scope, request.headers.get("authorization"))(scope, receive, send)
            return
        if request.method not in SAFE_METHODS and principal.via == "session":
            token = request.headers.get(CSRF_HEADER)
            if token is None and request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                body, complete = await _read_body(receive)
                if complete:
                    receive = _replay(body, receive)
                    fields = parse_qs(body.decode("utf-8", "replace")).get(CSRF_FIELD)
                    token = fields[0] if fields else None
            if not same_token(token, principal.csrf_token):
                await _forbidden_csrf()(scope, receive, send)
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


# --- route dependencies ----------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="An API token from `ductwork tokens create`.")


def current_principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):  # only reachable if the middleware is not installed
        raise HTTPException(401, "authentication required")
    return principal


def require(role: str) -> Callable[..., Principal]:
    def dependency(request: Request, _credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        principal = current_principal(request)
        if not accounts.role_allows(principal.role, role):
            raise HTTPException(
                403,
                f"user {principal.user.username!r} has the {principal.role} role; this needs {role} or above",
            )
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


Viewer = Depends(require("viewer"))
Operator = Depends(require("operator"))
Admin = Depends(require("admin"))
