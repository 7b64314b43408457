"""The OpenAPI document says what the server answers: every error as ``ErrorOut`` (or
``ValidationErrorOut`` for 422) under the status codes ``ductwork.api.errors`` and the
authentication middleware use, instead of FastAPI's default 422 body, which this API never
sends. Checked by ``tests/web/test_schemathesis.py`` (schemathesis' conformance checks).

The docs page (``/api/v1/docs``) is Swagger UI, which is not installed with Ductwork: the
browser loads it from a CDN. Until it has (or if the browser is offline), the page says so and
links the OpenAPI document itself."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from pydantic import TypeAdapter
from starlette.responses import HTMLResponse

from ductwork.api.schemas import ErrorOut, ValidationErrorOut

PUBLIC = frozenset({"/api/v1/health"})
DOCS = "/api/v1/docs"
OPENAPI = "/api/v1/openapi.json"
_UNTIL_LOADED = (
    '<div id="swagger-ui"><p id="docs-offline" style="font:15px sans-serif;margin:2em">'
    "Loading the API documentation (Swagger UI, from cdn.jsdelivr.net)… If it does not appear, this browser "
    "cannot reach the internet, which Swagger UI needs: it is not installed with Ductwork. The API is described "
    f'by its OpenAPI document, <a href="{OPENAPI}">{OPENAPI}</a>, which any OpenAPI viewer or client reads.</p>'
)
WRITES = frozenset({"post", "put", "patch", "delete"})

_WHY = {
    400: "A request the server cannot act on (the message says why)",
    401: "Not authenticated: send 'Authorization: Bearer <token>' or log in",
    403: "Not allowed for this role, or the CSRF token is missing",
    404: "Unknown flow, run, task, pool, user or token",
    409: "Refused by the state of things: a state change not allowed, a name already taken",
    415: "The body was not sent as JSON (Content-Type: application/json)",
    422: "Invalid input: each issue with where it is",
    503: "The metadata database cannot be reached",
}


def _ref(name: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}


def _errors_of(path: str, method: str, *, has_body: bool = False) -> list[int]:
    if path in PUBLIC:
        return []
    codes = [400, 401, 403, 422, 503]
    if "{" in path or method in WRITES:
        codes.append(404)
    if method in WRITES:
        codes.append(409)
    if has_body:
        codes.append(415)
    return sorted(codes)


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with each operation's error responses as the server sends them."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorOut, ValidationErrorOut):
        found = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        components.update(found.pop("$defs", {}))
        components[model.__name__] = found
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for code in _errors_of(path, method, has_body="requestBody" in operation):
                body = "ValidationErrorOut" if code == 422 else "ErrorOut"
                responses[str(code)] = {"description": _WHY[code], **_ref(body)}
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def install(app: FastAPI) -> None:
    generate = app.openapi  # FastAPI's own: builds the document once and keeps it
    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not done:
            done.append(document_errors(generate()))
        return done[0]

    app.openapi = openapi  # type: ignore[method-assign]

    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=OPENAPI, title=f"{app.title} API", swagger_favicon_url="/static/favicon.svg"
        )
        html = bytes(page.body).decode().replace('<div id="swagger-ui">', _UNTIL_LOADED, 1)
        return HTMLResponse(html)

    app.add_api_route(DOCS, docs, methods=["GET"], include_in_schema=False)
