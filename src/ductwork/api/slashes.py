"""Ids that hold a ``/`` (a task id such as ``Copy(src=/data/in)``, a run id given by hand)
stay addressable in URLs.

A client writes such an id as one path segment with ``%2F`` for the slash, as ``quote(id,
safe="")`` and JavaScript's ``encodeURIComponent`` do. The server decodes the whole path before
routing, so the slash would split the segment and no route would match. This middleware decodes
the path segment by segment instead, writing a slash inside a segment as NUL (which no id may
hold: PostgreSQL cannot store it); the path parameter types of ``routes._common`` turn NUL back
into ``/``. Paths without an encoded slash are left as they are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

SLASH_IN_SEGMENT = "\x00"

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def segment_path(raw_path: bytes) -> str:
    """The decoded path with each segment's own slashes written as ``SLASH_IN_SEGMENT``."""
    segments = raw_path.decode("ascii", "replace").split("/")
    return "/".join(unquote(s).replace("/", SLASH_IN_SEGMENT) for s in segments)


def restore_slashes(value: str) -> str:
    return value.replace(SLASH_IN_SEGMENT, "/")


NUL_REFUSED = (
    b'{"detail":"the path holds %00 (a NUL character), which no id may hold","error":"validation_error",'
    b'"errors":[{"loc":["path"],"msg":"a NUL character (%00) is not allowed"}]}'
)


NUL_REFUSED_PAGE = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>Bad address</title></head><body>"
    b"<h1>Bad address</h1><p>The address holds %00 (a NUL character), which no flow, run or task id may "
    b"hold. <a href='/'>Back to the flows</a></p></body></html>"
)
"""The same refusal for a page's address, which a person opened in a browser."""


class EncodedSlashes:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        raw = scope.get("raw_path") if scope["type"] in ("http", "websocket") else None
        if raw and scope["type"] == "http" and b"%00" in raw.split(b"?", 1)[0]:
            # decoded, it would read as the in-segment slash below: "no flow '/'" for %00
            page = not raw.startswith(b"/api/")
            body, kind = (NUL_REFUSED_PAGE, b"text/html; charset=utf-8") if page else (NUL_REFUSED, b"application/json")
            headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 422, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if raw and b"%2f" in raw.lower():
            scope = {**scope, "path": segment_path(raw.split(b"?", 1)[0])}
        await self.app(scope, receive, send)
