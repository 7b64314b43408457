"""Users (admins manage them) and API tokens (everyone manages their own)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS, Name
from ductwork.api.security import Admin, Principal, Viewer
from ductwork.errors import DuctworkError, NotFoundError, ParameterError
from ductwork.services import accounts
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import users as user_repo

router = APIRouter(tags=["access"], responses=ERRORS)

Username = Name


@router.get("/tokens", response_model=list[schemas.TokenOut])
def list_tokens(
    principal: Principal = Viewer,
    ctx: WebContext = Depends(web_context),
    all_users: bool = Query(False, description="Every user's tokens (admins only)."),
) -> list[schemas.TokenOut]:
    """Your API tokens (never their secrets)."""
    everyone = all_users and accounts.role_allows(principal.role, "admin")
    with read_transaction(ctx.engine) as conn:
        tokens = user_repo.list_tokens(conn, None if everyone else principal.user.id)
    return [schemas.token_out(t) for t in tokens]


@router.post("/tokens", response_model=schemas.NewTokenOut, status_code=201)
def create_token(
    body: schemas.TokenIn, principal: Principal = Viewer, ctx: WebContext = Depends(web_context)
) -> schemas.NewTokenOut:
    """A new API token acting as you, with your role. The secret is in this answer only."""
    expires = dt.timedelta(days=body.expires_in_days) if body.expires_in_days else None
    issued = accounts.issue_token(ctx.engine, principal.user.username, body.name, expires_in=expires)
    return schemas.NewTokenOut(**schemas.token_out(issued.record).model_dump(), token=issued.token)


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
def delete_token(
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    principal: Principal = Viewer,
    ctx: WebContext = Depends(web_context),
) -> Response:
    """Revoke one of your tokens (an admin may revoke anyone's)."""
    owner = None if accounts.role_allows(principal.role, "admin") else principal.user.id
    with transaction(ctx.engine) as conn:
        user_repo.delete_token(conn, token_id, user_id=owner)
    return Response(status_code=204)


@router.get("/users", response_model=list[schemas.UserOut], dependencies=[Admin])
def list_users(ctx: WebContext = Depends(web_context)) -> list[schemas.UserOut]:
    with read_transaction(ctx.engine) as conn:
        return [schemas.user_out(u) for u in user_repo.list_users(conn)]


@router.get("/users/{username}", response_model=schemas.UserOut, dependencies=[Admin])
def get_user(username: Username, ctx: WebContext = Depends(web_context)) -> schemas.UserOut:
    """One user (as Airflow's ``GET /users/{username}``; it was only in the list)."""
    with read_transaction(ctx.engine) as conn:
        user = user_repo.get_user(conn, username)
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return schemas.user_out(user)


@router.post("/users", response_model=schemas.UserOut, status_code=201, dependencies=[Admin])
def create_user(body: schemas.UserIn, ctx: WebContext = Depends(web_context)) -> schemas.UserOut:
    return schemas.user_out(accounts.create_user(ctx.engine, body.username, body.password, body.role))


@router.patch("/users/{username}", response_model=schemas.UserOut, dependencies=[Admin])
def change_user(
    username: Username, body: schemas.UserChange, ctx: WebContext = Depends(web_context)
) -> schemas.UserOut:
    """Set a user's password and/or role; the user's browser sessions end (API tokens stay, and
    act with the new role)."""
    if body.password is None and body.role is None:
        raise ParameterError("nothing to change: send 'password' and/or 'role'")
    if body.password is not None:
        accounts.set_password(ctx.engine, username, body.password)
    if body.role is not None:
        accounts.set_role(ctx.engine, username, body.role)
    with read_transaction(ctx.engine) as conn:
        user = user_repo.get_user(conn, username)
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return schemas.user_out(user)


@router.delete("/users/{username}", status_code=204, response_class=Response)
def delete_user(username: Username, principal: Principal = Admin, ctx: WebContext = Depends(web_context)) -> Response:
    if username == principal.user.username:
        raise DuctworkError("you cannot delete yourself; ask another admin")
    with transaction(ctx.engine) as conn:
        user_repo.delete_user(conn, username)
    return Response(status_code=204)
