"""The API's routers, one module per resource; ``api_router`` gathers them under ``/api/v1``."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ductwork.api.query import known_query_parameters
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
    # A query parameter the endpoint does not take is refused (a typo'd filter matched everything).
    router = APIRouter(prefix="/api/v1", dependencies=[Depends(known_query_parameters)])  # prefix: app.API_PREFIX
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
