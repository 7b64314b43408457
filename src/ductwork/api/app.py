"""``create_app``: the one FastAPI application that serves the REST API and the web UI.

Nothing happens at import. ``create_app`` builds the application from settings (and an engine,
when the caller has one: tests, ``ductwork standalone``); it connects to nothing until the first
request. The caller owns the engine it passes in; an engine created here is disposed of when
the application shuts down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import Engine

from ductwork.api import errors, openapi
from ductwork.api.audit import AuditMiddleware
from ductwork.api.context import WebContext, WebOptions
from ductwork.api.metrics import install as install_metrics
from ductwork.api.routes import api_router
from ductwork.api.routes.system import ductwork_version
from ductwork.api.security import AuthMiddleware
from ductwork.api.slashes import EncodedSlashes
from ductwork.settings import Settings
from ductwork.store.engine import create_engine

API_PREFIX = "/api/v1"


def create_app(settings: Settings, engine: Engine | None = None, *, options: WebOptions | None = None) -> FastAPI:
    """The API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``, docs at ``/api/v1/docs``)
    and the web UI at ``/``, behind one authentication middleware."""
    from ductwork.web.pages import install as install_web

    owned = engine is None
    store = engine if engine is not None else create_engine(settings.db_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            store.dispose()

    app = FastAPI(
        title="Ductwork",
        version=ductwork_version(),
        description="Flows, runs and tasks of a Ductwork installation. Authenticate with "
        "`Authorization: Bearer <token>` (create one with `ductwork tokens create`).",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # openapi.install serves the docs page, saying what to do offline
        redoc_url=None,
        lifespan=lifespan,
    )
    ctx = WebContext(settings=settings, engine=store, options=options or WebOptions())
    app.state.ctx = ctx
    errors.install(app)
    openapi.install(app)
    app.include_router(api_router())
    install_web(app)
    install_metrics(app, ctx)
    app.add_middleware(AuditMiddleware, ctx=ctx)  # inside authentication: it knows who asks
    app.add_middleware(AuthMiddleware, ctx=ctx)
    app.add_middleware(EncodedSlashes)  # outermost: routing must see ids with '/' as one segment
    return app
