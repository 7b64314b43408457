"""The API's routers, one module per resource; ``api_router`` gathers them under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter

from ductwork.api.routes import (
    accounts,
    assets,
    audit,
    events,
    flows,
    luigi,
    maintenance,
    pipelines,
    pools,
    runs,
    secrets,
    system,
    tasks,
    views,
    workers,
)


def api_router() -> APIRouter:
    router = APIRouter(prefix="/api/v1")  # keep in step with app.API_PREFIX
    modules = (
        system,
        flows,
        runs,
        tasks,
        views,
        pools,
        luigi,
        accounts,
        maintenance,
        audit,
        secrets,
        assets,
        events,
        pipelines,
        workers,
    )
    for module in modules:
        router.include_router(module.router)
    return router
