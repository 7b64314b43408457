"""Connections and variables (``ductwork connections``, ``ductwork variables``): operators read
them (passwords and secret-looking values never shown), admins change them. Stored encrypted
with the ``fernet_key`` setting, as from the CLI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS, Name
from ductwork.api.security import Admin, Operator, Principal
from ductwork.core.connections import Connection
from ductwork.core.masking import MASK, is_secret_name
from ductwork.errors import DefinitionError
from ductwork.services import accounts
from ductwork.services.names import check_new_key
from ductwork.store.crypto import Cipher
from ductwork.store.secrets import DatabaseSecrets

router = APIRouter(tags=["connections and variables"], responses=ERRORS)


def database_of(ctx: WebContext) -> DatabaseSecrets:
    """The metadata database as a secrets store, with the server's key (also the web pages')."""
    return DatabaseSecrets(ctx.engine, Cipher(ctx.settings.fernet_key))


@router.get("/connections", response_model=list[schemas.ConnectionOut], dependencies=[Operator])
def list_connections(ctx: WebContext = Depends(web_context)) -> list[schemas.ConnectionOut]:
    """The connections in the database (passwords never shown)."""
    return [schemas.ConnectionOut(**c.describe()) for c in database_of(ctx).list_connections()]


@router.get("/connections/{name}", response_model=schemas.ConnectionOut, dependencies=[Operator])
def get_connection(name: Name, ctx: WebContext = Depends(web_context)) -> schemas.ConnectionOut:
    """A connection as tasks see it (the configured secrets backends in order; the environment
    before the database by default), without its password."""
    from ductwork.engine.services_setup import build_secrets

    found = build_secrets(ctx.settings, engine=ctx.engine).get_connection(name)
    return schemas.ConnectionOut(**found.describe())


@router.put("/connections/{name}", response_model=schemas.ConnectionOut, dependencies=[Admin])
def put_connection(
    name: Name, body: schemas.ConnectionIn, ctx: WebContext = Depends(web_context)
) -> schemas.ConnectionOut:
    """Create or replace a connection, from a URI (``type://login:password@host:port/schema``)
    and/or fields; a field given overrides the URI's."""
    check_new_key("connection", name, ctx.engine)
    fields: dict[str, Any] = body.model_dump(exclude={"uri"}, exclude_none=True, by_alias=True)
    if body.uri:
        base = Connection.from_uri(name, body.uri)
        values = {**base.__dict__, **fields, "conn_id": name}
    else:
        if not body.conn_type:
            raise DefinitionError(f"connection {name!r}: give a uri or at least conn_type")
        values = {"conn_id": name, **fields}
    connection = Connection(**values)
    database_of(ctx).put_connection(connection)
    return schemas.ConnectionOut(**connection.describe())


@router.delete("/connections/{name}", status_code=204, response_class=Response, dependencies=[Admin])
def delete_connection(name: Name, ctx: WebContext = Depends(web_context)) -> Response:
    database_of(ctx).delete_connection(name)
    return Response(status_code=204)


def _shown(key: str, value: str, principal: Principal) -> str:
    """A variable's value for this reader: secret-looking names only for admins."""
    return MASK if is_secret_name(key) and not accounts.role_allows(principal.role, "admin") else value


@router.get("/variables", response_model=list[schemas.VariableOut])
def list_variables(
    principal: Principal = Operator, ctx: WebContext = Depends(web_context)
) -> list[schemas.VariableOut]:
    """Variables in the database; values of secret-looking names are shown as ***."""
    database = database_of(ctx)
    out = []
    for row in database.list_variables():
        value = MASK if is_secret_name(row.key) else (database.get_variable(row.key) or "")
        out.append(
            schemas.VariableOut(key=row.key, value=value, encrypted=row.is_encrypted, description=row.description)
        )
    return out


@router.get("/variables/{key}", response_model=schemas.VariableOut)
def get_variable(
    key: Name, principal: Principal = Operator, ctx: WebContext = Depends(web_context)
) -> schemas.VariableOut:
    """A variable as tasks see it (environment first, then the database by default); the value of
    a secret-looking name is shown to admins only."""
    from ductwork.engine.services_setup import build_secrets

    value = build_secrets(ctx.settings, engine=ctx.engine).get_variable(key)
    database = database_of(ctx)
    stored = next((r for r in database.list_variables() if r.key == key), None)
    return schemas.VariableOut(
        key=key,
        value=_shown(key, value, principal),
        encrypted=bool(stored and stored.is_encrypted),
        description=stored.description if stored else "",
    )


@router.put("/variables/{key}", response_model=schemas.VariableOut, dependencies=[Admin])
def put_variable(key: Name, body: schemas.VariableIn, ctx: WebContext = Depends(web_context)) -> schemas.VariableOut:
    """Set a variable (encrypted when the fernet_key setting is set; a secret-looking name
    without a key is refused)."""
    check_new_key("variable", key, ctx.engine)
    encrypted = database_of(ctx).set_variable(key, body.value, description=body.description)
    return schemas.VariableOut(
        key=key, value=MASK if is_secret_name(key) else body.value, encrypted=encrypted, description=body.description
    )


@router.delete("/variables/{key}", status_code=204, response_class=Response, dependencies=[Admin])
def delete_variable(key: Name, ctx: WebContext = Depends(web_context)) -> Response:
    database_of(ctx).delete_variable(key)
    return Response(status_code=204)
