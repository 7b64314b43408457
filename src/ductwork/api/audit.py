"""Every change made through the API or the UI goes into the audit log, recorded in one place.

``AuditMiddleware`` sits inside the authentication middleware, so it knows who is asking. It
follows each write request (any method but GET, HEAD and OPTIONS), keeps a copy of the body as
the route reads it, and once a response with a status below 400 has been sent, records the
route's action (``ACTIONS``; a route added later is recorded as ``api.<route name>``), its target
(the path parameters), and the body and query (secrets redacted by ``services.audit``). A dry
run, a refused request and a failed one record nothing. Requests authenticated with a session
cookie are the UI's (``via=ui``), those with a token the API's (``via=api``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool

from ductwork.api.context import WebContext
from ductwork.api.security import SAFE_METHODS, ASGIApp, Principal, Receive, Scope, Send

ACTIONS: dict[str, str] = {
    "trigger": "run.trigger",
    "trigger_submit": "run.trigger",
    "backfill": "run.backfill",
    "cancel_run": "run.cancel",
    "delete_run": "run.delete",
    "clear_tasks": "tasks.clear",
    "mark_tasks": "tasks.mark",
    "put_pool": "pool.set",
    "delete_pool": "pool.delete",
    "create_user": "user.create",
    "delete_user": "user.delete",
    "change_user": "user.change",
    "create_token": "token.create",
    "delete_token": "token.delete",
    "put_connection": "connection.set",
    "connection_create_submit": "connection.set",
    "connection_edit_submit": "connection.set",
    "connection_delete_submit": "connection.delete",
    "variable_create_submit": "variable.set",
    "variable_edit_submit": "variable.set",
    "variable_delete_submit": "variable.delete",
    "user_create_submit": "user.create",
    "user_role_submit": "user.change",
    "user_password_submit": "user.change",
    "user_delete_submit": "user.delete",
    "delete_connection": "connection.delete",
    "put_variable": "variable.set",
    "delete_variable": "variable.delete",
    "clean": "db.clean",
    "put_pipeline": "pipeline.put",
    "activate_pipeline": "pipeline.activate",
    "deactivate_pipeline": "pipeline.deactivate",
    "create_asset_event": "asset.update",
    "replay_dead_letter": "dead_letter.replay",
    "delete_dead_letter": "dead_letter.drop",
}
NOT_CHANGES = frozenset({"login", "logout", "validate_pipeline"})
"""Writes that change nothing an operator would audit (sessions come and go)."""
MAX_BODY = 64 * 1024
"""Bodies past this size are not copied (the entry then names the action and target only)."""
_DROPPED = frozenset({"csrf_token", "dry_run"})
_NAMED_BY = {
    "create_user": "username",
    "create_token": "name",
    "connection_create_submit": "conn_id",
    "variable_create_submit": "key",
    "user_create_submit": "username",
    "create_asset_event": "uri",
    "clean": "flow_id",
}
"""Routes that create a thing named in their body (no path parameter): the field that names it;
``db clean`` names the flow it is limited to there."""
_EVERYTHING = frozenset({"clean"})
"""Routes whose target, when the body names none, is everything: recorded as ``*``, as the CLI's
``db clean`` and ``db reset`` are (the API's ``db.clean`` had an empty target, so
``--target etl`` or ``*`` found only the CLI's cleans)."""


class AuditMiddleware:
    def __init__(self, app: ASGIApp, ctx: WebContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method", "GET") in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        status = 0

        async def copying_receive() -> MutableMapping[str, Any]:
            message = await receive()
            if message.get("type") == "http.request" and len(body) <= MAX_BODY:
                body.extend(message.get("body", b""))
            return message

        async def status_send(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        await self.app(scope, copying_receive, status_send)
        if 200 <= status < 400:
            entry = _entry(scope, bytes(body) if len(body) <= MAX_BODY else b"", status)
            if entry is not None:
                await run_in_threadpool(_write, self.ctx, *entry)


def _entry(scope: Scope, body: bytes, status: int) -> tuple[Principal, str, str, str, dict[str, Any]] | None:
    principal = scope.get("state", {}).get("principal")
    route = scope.get("route")
    name = getattr(route, "name", None) or ""
    if not isinstance(principal, Principal) or not name or name in NOT_CHANGES:
        return None
    query = {
        k: v[0] if len(v) == 1 else v for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()
    }
    sent = _body(scope, body)
    if _truthy(query.get("dry_run")) or (isinstance(sent, Mapping) and _truthy(sent.get("dry_run"))):
        return None
    action = ACTIONS.get(name, f"api.{name}")
    if name == "patch_flow" and isinstance(sent, Mapping):
        action = "flow.pause" if _truthy(sent.get("is_paused")) else "flow.unpause"
    params: Mapping[str, Any] = scope.get("path_params") or {}
    target = "/".join(str(v) for v in params.values())
    if not target and isinstance(sent, Mapping):  # a creation names its thing in the body
        named = sent.get(_NAMED_BY.get(name, ""))
        target = str(named) if isinstance(named, str | int) else ""
    if not target and name in _EVERYTHING:
        target = "*"
    details: dict[str, Any] = {"method": scope["method"], "path": scope["path"], "status": status}
    if isinstance(sent, Mapping):
        details["body"] = {k: v for k, v in sent.items() if k not in _DROPPED}
    query = {k: v for k, v in query.items() if k not in _DROPPED}
    if query:
        details["query"] = query
    via = "ui" if principal.via == "session" else "api"
    client = scope.get("client")
    origin = str(client[0]) if client else ""
    return principal, via, origin, action, {"target": target, "details": details}


def _body(scope: Scope, body: bytes) -> Any:
    if not body:
        return None
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
    kind = headers.get("content-type", "")
    try:
        if kind.startswith("application/json"):
            return json.loads(body)
        if kind.startswith("application/x-www-form-urlencoded"):
            return {k: v[0] if len(v) == 1 else v for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    except ValueError:
        return None
    return None


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"))


def _write(ctx: WebContext, principal: Principal, via: str, origin: str, action: str, rest: dict[str, Any]) -> None:
    from ductwork.services import audit

    actor = audit.Actor(principal.user.username, via, origin)
    audit.record(ctx.engine, actor, action, rest["target"], rest["details"])
