"""Pools: named slot limits shared by all runs. Reading needs a login; changing them, an admin."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy import Connection

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS, Name
from ductwork.api.security import Admin, Viewer
from ductwork.errors import NotFoundError
from ductwork.services import pools as pool_service
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import pools as pool_repo

router = APIRouter(tags=["pools"], responses=ERRORS)

PoolName = Name


def _pools_in(conn: Connection) -> list[schemas.PoolOut]:
    descriptions = {p.name: p.description for p in pool_repo.list_pools(conn)}
    return [schemas.pool_out(u, descriptions.get(u.name, "")) for u in pool_repo.pool_usage(conn)]


def _pools(ctx: WebContext) -> list[schemas.PoolOut]:
    with read_transaction(ctx.engine) as conn:
        return _pools_in(conn)


@router.get("/pools", response_model=list[schemas.PoolOut], dependencies=[Viewer])
def list_pools(ctx: WebContext = Depends(web_context)) -> list[schemas.PoolOut]:
    """Every pool with the slots its queued and running tasks hold."""
    return _pools(ctx)


@router.get("/pools/{name}", response_model=schemas.PoolOut, dependencies=[Viewer])
def get_pool(name: PoolName, ctx: WebContext = Depends(web_context)) -> schemas.PoolOut:
    for pool in _pools(ctx):
        if pool.name == name:
            return pool
    raise NotFoundError(f"no pool {name!r}")


@router.put("/pools/{name}", response_model=schemas.PoolOut, dependencies=[Admin])
def put_pool(name: PoolName, body: schemas.PoolIn, ctx: WebContext = Depends(web_context)) -> schemas.PoolOut:
    """Create a pool or change its slots and description (sent without one, it keeps its own; a
    running scheduler picks the change up when restarted)."""
    with transaction(ctx.engine) as conn:
        pool_service.set_pool(conn, name, body.slots, body.description)
        # read in the same transaction: read afterwards, two admins setting the same pool at
        # once could each be answered with the other's slots
        return next(p for p in _pools_in(conn) if p.name == name)


@router.delete(
    "/pools/{name}",
    status_code=204,
    response_class=Response,
    responses={200: {"model": schemas.PoolDeletionOut, "description": "With dry_run: what the pool holds."}},
    dependencies=[Admin],
)
def delete_pool(
    name: PoolName,
    ctx: WebContext = Depends(web_context),
    dry_run: bool = Query(False, description="Only say what the pool holds; delete nothing."),
) -> Response:
    """Delete a pool (tasks naming it then run without its limit)."""
    done = pool_service.delete_pool(ctx.engine, name, dry_run=dry_run)
    if dry_run:
        body = schemas.PoolDeletionOut(**dataclasses.asdict(done))
        return JSONResponse(body.model_dump(mode="json"), status_code=200)
    return Response(status_code=204)
