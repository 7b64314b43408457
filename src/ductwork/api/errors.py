"""Errors as JSON: ``{"detail": "<a message that names the thing>", "error": "<code>"}``.

Ductwork's own exceptions map to status codes here, once, so that routes just call services and
let errors through: unknown flow, run or task → 404; bad parameter values → 422; a state change
the state machine refuses or a name already taken → 409; a definition that cannot be accepted →
400; the database down → 503.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError, ProgrammingError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ductwork.errors import (
    BackfillRefusedError,
    DefinitionError,
    DuctworkError,
    InvalidTransitionError,
    NotFoundError,
    ParameterError,
)
from ductwork.services.accounts import AuthenticationError
from ductwork.store.errors import DatabaseUnreachableError, PoolInUseError, RunExistsError, SchemaMismatchError
from ductwork.store.repo.users import UserExistsError

_STATUS: list[tuple[type[Exception], int, str]] = [
    (NotFoundError, 404, "not_found"),
    (ParameterError, 422, "invalid_parameter"),
    (InvalidTransitionError, 409, "invalid_transition"),
    (BackfillRefusedError, 409, "backfill_refused"),
    (RunExistsError, 409, "conflict"),
    (UserExistsError, 409, "conflict"),
    (PoolInUseError, 409, "conflict"),
    (AuthenticationError, 401, "unauthenticated"),
    (DatabaseUnreachableError, 503, "database_unreachable"),
    (SchemaMismatchError, 503, "schema_mismatch"),
    (DefinitionError, 400, "invalid_definition"),
    (DuctworkError, 400, "bad_request"),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    415: "unsupported_media_type",
    422: "validation_error",
}

JSON_MEDIA_TYPE = "application/json"
_FASTAPI_BODY_ERROR = "There was an error parsing the body"


def error_body(detail: str, error: str, **extra: Any) -> dict[str, Any]:
    return {"detail": detail, "error": error, **extra}


def status_of(exc: Exception) -> tuple[int, str]:
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"


def _for_person(request: Request) -> bool:
    """Whether the request came from a page (an HTML error page fits better than JSON)."""
    return not request.url.path.startswith("/api/") and getattr(request.app.state, "html_error", None) is not None


async def _ductwork_error(request: Request, exc: Exception) -> Response:
    status, code = status_of(exc)
    if _for_person(request):
        return request.app.state.html_error(request, status, str(exc))
    extra = {"start": exc.start} if isinstance(exc, BackfillRefusedError) else {}
    return JSONResponse(error_body(str(exc), code, **extra), status_code=status)


def _where(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "header", "cookie"):
        # A repeated query parameter (?state=a&state=b) is named, not its index ('state.0').
        named = [p for p in parts[1:] if not p.isdigit()] if parts[0] == "query" else parts[1:]
        return f"{parts[0]} parameter {'.'.join(named)!r}"
    if parts and parts[0] == "body":
        return f"body field {'.'.join(parts[1:])!r}" if len(parts) > 1 else "request body"
    return ".".join(parts)


_CHOICES = re.compile(r"\^\(([\w|.-]*)\)\$")
"""A pattern that only lists the words a parameter takes (``^(|yes|no)$``)."""


def _issue(error: Any) -> dict[str, Any]:
    """One validation error as the client reads it. A body that is not JSON is reported at the
    body, with the character it broke at (FastAPI puts that offset where a field name goes)."""
    loc, msg = list(error.get("loc", ())), str(error.get("msg", ""))
    if error.get("type") == "json_invalid":
        at = loc[1] if len(loc) > 1 else None
        reason = (error.get("ctx") or {}).get("error", "")
        return {
            "loc": ["body"],
            "msg": f"not valid JSON ({reason or msg}" + (f", at character {at})" if at is not None else ")"),
        }
    choices = _CHOICES.fullmatch(str((error.get("ctx") or {}).get("pattern", "")))
    if error.get("type") == "string_pattern_mismatch" and choices:  # ^(cli|api|ui)$: say the words
        words = [w for w in choices.group(1).split("|") if w]
        empty = " (or nothing)" if "" in choices.group(1).split("|") else ""
        return {"loc": loc, "msg": f"{error.get('input')!r} is not one of {', '.join(words)}{empty}"}
    if loc == ["body"] and error.get("type") == "missing":  # ``curl -X POST`` with no ``-d``
        return {"loc": loc, "msg": "the body is empty: send a JSON object ({} when there is nothing to give)"}
    return {"loc": loc, "msg": msg}


def _body_fields(request: Request) -> list[str]:
    """The fields the route's JSON body takes (by the names a client sends), or none known."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    params = list(getattr(dependant, "body_params", None) or [])
    if len(params) != 1:
        return []
    model = getattr(params[0].field_info, "annotation", None)
    fields = getattr(model, "model_fields", None)
    if not isinstance(fields, dict):
        return []
    return sorted(info.alias or name for name, info in fields.items())


def _name_body_fields(request: Request, errors: list[dict[str, Any]]) -> None:
    """A body field the endpoint does not take is named with the closest one it takes and the
    others, as a stray query parameter is: Airflow's ``{"dag_run_id": ...}`` sent to
    ``POST .../runs`` was answered "Extra inputs are not permitted", which names no way out."""
    stray = [e for e in errors if len(e["loc"]) == 2 and e["loc"][0] == "body" and e["msg"].startswith("Extra inputs")]
    taken = _body_fields(request) if stray else []
    if not taken:
        return
    for error in stray:
        close = difflib.get_close_matches(str(error["loc"][1]), taken, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        error["msg"] = f"not a field of this body ({hint}it takes: {', '.join(taken)})"


def _not_json(request: Request, exc: RequestValidationError) -> str | None:
    """Why the body was not read as JSON, when the client labelled it as something else.

    FastAPI parses a body as JSON only when its ``Content-Type`` says JSON (or is absent);
    otherwise the model sees raw bytes and the error would read "Input should be a valid
    dictionary", which sends people looking at their JSON. ``curl -d '{...}'`` without
    ``-H 'Content-Type: application/json'`` labels the body as a form, so this is common."""
    if not any(tuple(e.get("loc", ())) == ("body",) and isinstance(e.get("input"), bytes) for e in exc.errors()):
        return None
    given = request.headers.get("content-type", "")
    return (
        f"the request body must be JSON, sent with 'Content-Type: {JSON_MEDIA_TYPE}' "
        f"(this one was sent as {given!r}; curl -d needs -H 'Content-Type: {JSON_MEDIA_TYPE}')"
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    wrong_type = _not_json(request, exc)
    if wrong_type is not None:
        if _for_person(request):
            return request.app.state.html_error(request, 415, wrong_type)
        return JSONResponse(error_body(wrong_type, _HTTP_CODES[415]), status_code=415)
    errors = [_issue(e) for e in exc.errors()]
    _name_body_fields(request, errors)
    detail = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    if _for_person(request):  # a page's bad query string: the error page, not JSON
        return request.app.state.html_error(request, 422, detail)
    return JSONResponse(error_body(detail, "validation_error", errors=errors), status_code=422)


def _unreadable_body(exc: StarletteHTTPException) -> str | None:
    """Why FastAPI could not read a JSON body, from the exception behind its bare "There was an
    error parsing the body" (it keeps the cause as ``__cause__``)."""
    cause = exc.__cause__
    if exc.status_code != 400 or cause is None or exc.detail != _FASTAPI_BODY_ERROR:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return f"request body: not valid JSON (it is not UTF-8 text: byte {cause.start} cannot be decoded)"
    if isinstance(cause, RecursionError):
        return "request body: not valid JSON this server can read (arrays or objects nested too deeply)"
    return f"request body: not valid JSON ({cause})"


def _no_route(request: Request, exc: StarletteHTTPException) -> str | None:
    """Routing's bare "Not Found" for an API path that matches no route, with the likely reason:
    a task id of a task group with '/' in its name, sent unencoded, splits into two segments.
    The path is shown as it was sent: an encoded slash is read as NUL here (``api.slashes``), and
    ``GET /api/v1/assets/s3%3A%2F%2Flake%2Forders`` answered with ``s3:\u0000\u0000lake...`` and
    "must be sent encoded as %2F", which it was. An asset is addressed by a query parameter."""
    if exc.status_code != 404 or exc.detail != "Not Found" or not request.url.path.startswith("/api/"):
        return None
    raw = request.scope.get("raw_path")
    shown = raw.split(b"?", 1)[0].decode("latin-1") if raw else request.url.path  # as it was sent
    if shown.startswith("/api/v1/assets/"):
        return (
            f"no API route for {request.method} {shown}: an asset is named by its URI in the query, "
            "GET /api/v1/assets/detail?uri=s3%3A%2F%2Flake%2Forders (see /api/v1/docs)"
        )
    return (
        f"no API route for {request.method} {shown}: check the path against /api/v1/docs; "
        "an id that holds '/' must be sent with it encoded as %2F"
    )


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _methods_at(request: Request, path: str) -> list[str]:
    """The methods some route of the application answers at ``path``."""
    from starlette.routing import Match

    found = []
    for method in _METHODS:
        scope = {**request.scope, "path": path, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            found.append(method)
    return found


def _not_allowed(request: Request, exc: StarletteHTTPException) -> str | None:
    """Routing's bare "Method Not Allowed" for an API path, with the methods the path takes and,
    for a collection (``POST /api/v1/pools``), how one of its items is created: ``PUT
    /api/v1/pools/NAME``. Airflow creates pools with a POST; the answer said only "405"."""
    if exc.status_code != 405 or not request.url.path.startswith("/api/"):
        return None
    from ductwork.api.slashes import SLASH_IN_SEGMENT

    path = request.url.path.rstrip("/")
    here = _methods_at(request, path)
    shown = path.replace(SLASH_IN_SEGMENT, "%2F")  # as it was sent
    detail = f"{request.method} is not allowed on {shown}: it takes {', '.join(here) or 'no method'}"
    item = _methods_at(request, path + "/NAME")
    if request.method in ("POST", "PUT") and "PUT" in item:
        return f"{detail}; to create or change one, PUT {shown}/NAME with a JSON body"
    return detail


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    detail = _unreadable_body(exc) or _no_route(request, exc) or _not_allowed(request, exc) or detail
    if _for_person(request):
        return request.app.state.html_error(request, exc.status_code, detail)
    return JSONResponse(
        error_body(detail, _HTTP_CODES.get(exc.status_code, "error")),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a database connection that failed in the middle of its use (a restart,
    a network cut), rather than a lock or a bad statement. A pooled connection used within the
    last second is handed out unchecked (``store.engine.PING_AFTER_IDLE``), so this is how a
    server that went away just now shows."""
    return isinstance(exc, OperationalError | InterfaceError) and (
        bool(getattr(exc, "connection_invalidated", False)) or isinstance(exc, InterfaceError)
    )


def schema_mismatch(engine: Engine, exc: BaseException) -> SchemaMismatchError | None:
    """Why a statement failed, when the reason is the database's schema rather than the
    statement: no Ductwork schema at all (its tables dropped under a running server), or one a
    newer Ductwork migrated (``db upgrade`` run before this server was restarted). Those were a
    500 "ProgrammingError" (PostgreSQL, MariaDB) that said nothing of what to run. Looked at
    only once a statement has failed, so a request that succeeds pays nothing for it."""
    if not isinstance(exc, ProgrammingError | OperationalError) or connection_lost(exc):
        return None
    from ductwork.store import migrate

    try:
        migrate.check(engine)
    except SchemaMismatchError as mismatch:
        return mismatch
    except Exception:  # the database cannot say: the statement's own error stands
        return None
    return None


async def _connection_lost(request: Request, exc: Exception) -> Response:
    """A database connection that failed in the middle of a request: the same 503 as a database
    that could not be reached at all; a statement that failed because the schema is not this
    server's: a 503 saying which command puts it right."""
    from ductwork.store.engine import unreachable

    engine = request.app.state.ctx.engine
    assert isinstance(engine, Engine)
    if not connection_lost(exc):
        mismatch = schema_mismatch(engine, exc)
        if mismatch is None:
            raise exc  # not a lost connection (a lock, a bad statement): a server error as before
        return await _ductwork_error(request, mismatch)
    return await _ductwork_error(request, unreachable(engine.url, exc))


async def _unstorable_text(request: Request, exc: Exception) -> Response:
    """Text no database can store: JSON's escapes allow a lone UTF-16 surrogate (``\\ud800``),
    which is not Unicode. The client's mistake, so a 422 rather than a server error."""
    detail = (
        "the request holds text that is not valid Unicode (an unpaired surrogate such as \\ud800, "
        f"or bytes that are not UTF-8): {exc}"
    )
    if _for_person(request):
        return request.app.state.html_error(request, 422, detail)
    return JSONResponse(error_body(detail, "validation_error"), status_code=422)


async def _server_error(request: Request, exc: Exception) -> Response:
    """A failure nobody foresaw: the page (or JSON, for the API) says so and leads back, where
    the browser showed a bare "Internal Server Error" with no way on. Starlette logs the
    traceback after this answer is sent, and uvicorn then closes the connection: the answer says
    so (``Connection: close``), or a client keeping it open sent its next request down a closing
    connection and got "Connection reset by peer" instead of an answer."""
    detail = f"the server failed on this request ({type(exc).__name__}); its log has the traceback"
    if _for_person(request):
        page: Response = request.app.state.html_error(request, 500, detail)
    else:
        page = JSONResponse(error_body(detail, "internal_error"), status_code=500)
    page.headers["connection"] = "close"
    return page


def install(app: FastAPI) -> None:
    app.add_exception_handler(Exception, _server_error)
    app.add_exception_handler(UnicodeError, _unstorable_text)
    app.add_exception_handler(OperationalError, _connection_lost)
    app.add_exception_handler(InterfaceError, _connection_lost)
    app.add_exception_handler(ProgrammingError, _connection_lost)
    app.add_exception_handler(DuctworkError, _ductwork_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
