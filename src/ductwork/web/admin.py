"""The admin pages, as Airflow's Admin menu: connections, variables and users.

Plain HTML forms posted with the session's CSRF token (checked by ``api.security``), each post
role-checked here as the REST API checks the same action: operators read connections and
variables (passwords and secret-looking values never shown), admins change them and manage
users. Every change goes through the REST API's own route functions, so a form and a script
get the same rules and messages; the audit middleware records each accepted post (``ACTIONS``
in ``api.audit``). A refused post gives the form back, as filled in, with the reason and a
4xx status (so nothing is audited).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.errors import status_of
from ductwork.api.routes import accounts as account_routes
from ductwork.api.routes import secrets as secret_routes
from ductwork.api.routes._common import Name
from ductwork.api.security import current_principal
from ductwork.core.json_text import json_object
from ductwork.core.masking import MASK, is_secret_name
from ductwork.errors import DuctworkError, ParameterError
from ductwork.services.names import check_new_name
from ductwork.store.repo.users import ROLES
from ductwork.web.render import page, require_page_role

router = APIRouter(include_in_schema=False)

MAX_NAME = 250
"""The longest connection id, variable key or user name (as the API's path parameters)."""


class FormError(ParameterError):
    """Bad input in a form, named for the person who typed it."""


class NameTakenError(FormError):
    """A new connection, variable or user with a name already taken (409, as the API's
    ``UserExistsError``): the form creates, it does not replace what is there."""


def _refusal(exc: Exception) -> tuple[int, str]:
    """The status and message of a refused form post; a database outage stays an error page."""
    if isinstance(exc, ValidationError):
        return 422, "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())
    status, _code = (409, "conflict") if isinstance(exc, NameTakenError) else status_of(exc)
    if status >= 500:
        raise exc
    return status, str(exc)


def _new_name(kind: str, text: str) -> str:
    """A connection id, variable key or user name typed in a form: refused, not trimmed, with
    spaces around it ('region ' is not the 'region' tasks read), as the API, the CLI and the
    pools page do."""
    if not text.strip():
        raise FormError(f"a {kind} needs a name: the field is {'empty' if not text else 'only spaces'}")
    return check_new_name(kind, text)


async def _form(request: Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.form()).items() if k != "csrf_token"}


def _back(path: str, **message: str) -> Response:
    return RedirectResponse(path + ("?" + urlencode(message) if message else ""), status_code=303)


def _q(name: str) -> str:
    return quote(name, safe="")


# --- connections -------------------------------------------------------------------------------
@router.get("/connections")
def connections_page(
    request: Request,
    ctx: WebContext = Depends(web_context),
    saved: str = Query("", max_length=MAX_NAME),
    deleted: str = Query("", max_length=MAX_NAME),
) -> Response:
    """Operators read (no passwords, secret-looking extras as ***), admins change."""
    require_page_role(request, "operator")
    found = secret_routes.list_connections(ctx)
    return page(request, "connections.html", connections=found, saved=saved, deleted=deleted)


def _connection_form(
    request: Request, *, creating: bool, values: Mapping[str, Any], error: str = "", status_code: int = 200
) -> Response:
    return page(
        request,
        "connection_form.html",
        status_code=status_code,
        creating=creating,
        values=values,
        error=error,
        has_password=bool(values.get("has_password")),
    )


def _connection_values(found: schemas.ConnectionOut) -> dict[str, Any]:
    """A stored connection as its edit form shows it: the password never, secret extras as ***."""
    return {
        "conn_id": found.conn_id,
        "conn_type": found.conn_type,
        "host": found.host or "",
        "port": "" if found.port is None else str(found.port),
        "login": found.login or "",
        "schema": found.schema_ or "",
        "extra": json.dumps(found.extra, indent=2, ensure_ascii=False) if found.extra else "",
        "description": found.description,
        "has_password": found.password is not None,
    }


@router.get("/connections/new")
def connection_new_form(request: Request) -> Response:
    require_page_role(request, "admin")
    return _connection_form(request, creating=True, values={})


@router.get("/connections/{name}/edit")
def connection_edit_form(request: Request, name: Name, ctx: WebContext = Depends(web_context)) -> Response:
    require_page_role(request, "admin")
    stored = secret_routes.database_of(ctx).get_connection(name)
    if stored is None:
        return _gone(request, "connection", name)
    return _connection_form(
        request, creating=False, values=_connection_values(schemas.ConnectionOut(**stored.describe()))
    )


@router.post("/connections")
async def connection_create_submit(request: Request, ctx: WebContext = Depends(web_context)) -> Response:
    require_page_role(request, "admin")
    form = await _form(request)
    try:
        name = _new_name("connection", form.get("conn_id", ""))
        if secret_routes.database_of(ctx).get_connection(name) is not None:
            raise NameTakenError(f"a connection named {name!r} exists already: edit it, or choose another name")
        _save_connection(ctx, name, form, stored=None)
    except (DuctworkError, ValidationError) as exc:
        status, message = _refusal(exc)
        values = {k: v for k, v in form.items() if k != "password"}  # a password is never sent back
        return _connection_form(request, creating=True, values=values, error=message, status_code=status)
    return _back("/connections", saved=name)


@router.post("/connections/{name}/edit")
async def connection_edit_submit(request: Request, name: Name, ctx: WebContext = Depends(web_context)) -> Response:
    require_page_role(request, "admin")
    form = await _form(request)
    stored = secret_routes.database_of(ctx).get_connection(name)
    if stored is None:
        return _gone(request, "connection", name)
    try:
        _save_connection(ctx, name, form, stored=stored.__dict__)
    except (DuctworkError, ValidationError) as exc:
        status, message = _refusal(exc)
        values = {**form, "conn_id": name, "password": "", "has_password": stored.password is not None}
        return _connection_form(request, creating=False, values=values, error=message, status_code=status)
    return _back("/connections", saved=name)


def _save_connection(ctx: WebContext, name: str, form: Mapping[str, str], stored: Mapping[str, Any] | None) -> None:
    """The form's fields through the API's ``PUT /connections/{name}``. On an edit, an empty
    password keeps the stored one (unless "remove the password" is ticked) and an extra's
    ``***`` keeps the stored secret under that key."""
    port_text = form.get("port", "").strip()
    try:
        port = int(port_text) if port_text else None
    except ValueError:
        raise FormError(f"port: {port_text!r} is not a number from 0 to 65535") from None
    extra = _posted_extra(form.get("extra", ""), stored.get("extra") if stored else None)
    password: str | None = form.get("password") or None
    if password is None and stored is not None and not form.get("clear_password"):
        password = stored.get("password")
    body = schemas.ConnectionIn(
        conn_type=form.get("conn_type", "").strip() or None,
        host=form.get("host", "").strip() or None,
        port=port,
        login=form.get("login") or None,
        password=password,
        schema=form.get("schema", "").strip() or None,
        extra=extra,
        description=form.get("description", ""),
    )
    secret_routes.put_connection(name, body, ctx)


def _posted_extra(text: str, stored: Any) -> dict[str, Any] | None:
    if not text.strip():
        return None
    value = json_object(text, "extra", example='{"timeout": 5}')
    return _unmasked(value, stored if isinstance(stored, Mapping) else {})


def _unmasked(value: dict[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` with each ``***`` under a secret-looking key (as the form showed it) put back
    to what is stored there, at any depth."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        before = stored.get(key)
        if item == MASK and is_secret_name(key) and key in stored:
            out[key] = before
        elif isinstance(item, dict):
            out[key] = _unmasked(item, before if isinstance(before, Mapping) else {})
        else:
            out[key] = item
    return out


@router.get("/connections/{name}/delete")
def connection_delete_form(request: Request, name: Name) -> Response:
    require_page_role(request, "admin")
    return _confirm(request, "connection", name, f"/connections/{_q(name)}/delete", "/connections")


@router.post("/connections/{name}/delete")
def connection_delete_submit(request: Request, name: Name, ctx: WebContext = Depends(web_context)) -> Response:
    require_page_role(request, "admin")
    try:
        secret_routes.delete_connection(name, ctx)
    except DuctworkError as exc:
        status, message = _refusal(exc)
        return _confirm(request, "connection", name, "", "/connections", error=message, status_code=status)
    return _back("/connections", deleted=name)


# --- variables ---------------------------------------------------------------------------------
@router.get("/variables")
def variables_page(
    request: Request,
    ctx: WebContext = Depends(web_context),
    saved: str = Query("", max_length=MAX_NAME),
    deleted: str = Query("", max_length=MAX_NAME),
) -> Response:
    """Operators read (secret-looking names' values as ***, as the API lists them), admins change."""
    principal = require_page_role(request, "operator")
    found = secret_routes.list_variables(principal, ctx)
    return page(request, "variables.html", variables=found, saved=saved, deleted=deleted)


def _variable_form(
    request: Request, *, creating: bool, values: Mapping[str, Any], error: str = "", status_code: int = 200
) -> Response:
    key = str(values.get("key", ""))
    return page(
        request,
        "variable_form.html",
        status_code=status_code,
        creating=creating,
        values=values,
        error=error,
        secret=not creating and is_secret_name(key),
    )


@router.get("/variables/new")
def variable_new_form(request: Request) -> Response:
    require_page_role(request, "admin")
    return _variable_form(request, creating=True, values={})


def _stored_variable(ctx: WebContext, key: str) -> tuple[str, str] | None:
    """A variable's value and description in the database (not the environment's), or None."""
    database = secret_routes.database_of(ctx)
    row = next((r for r in database.list_variables() if r.key == key), None)
    if row is None:
        return None
    return database.get_variable(key) or "", row.description


@router.get("/variables/{key}/edit")
def variable_edit_form(request: Request, key: Name, ctx: WebContext = Depends(web_context)) -> Response:
    require_page_role(request, "admin")
    stored = _stored_variable(ctx, key)
    if stored is None:
        return _gone(request, "variable", key)
    value, description = stored
    shown = "" if is_secret_name(key) else value  # a secret's value is not sent to the browser
    return _variable_form(request, creating=False, values={"key": key, "value": shown, "description": description})


@router.post("/variables")
async def variable_create_submit(request: Request, ctx: WebContext = Depends(web_context)) -> Response:
    require_page_role(request, "admin")
    form = await _form(request)
    try:
        key = _new_name("variable", form.get("key", ""))
        if _stored_variable(ctx, key) is not None:
            raise NameTakenError(f"a variable named {key!r} exists already: edit it, or choose another name")
        body = schemas.VariableIn(value=form.get("value", ""), description=form.get("description", ""))
        secret_routes.put_variable(key, body, ctx)
    except (DuctworkError, ValidationError) as exc:
        status, message = _refusal(exc)
        return _variable_form(request, creating=True, values=form, error=message, status_code=status)
    return _back("/variables", saved=key)


@router.post("/variables/{key}/edit")
async def variable_edit_submit(request: Request, key: Name, ctx: WebContext = Depends(web_context)) -> Response:
    """An empty value of a secret-looking variable keeps the stored one (the form never shows it)."""
    require_page_role(request, "admin")
    form = await _form(request)
    stored = _stored_variable(ctx, key)
    if stored is None:
        return _gone(request, "variable", key)
    value = form.get("value", "")
    if value == "" and is_secret_name(key):
        value = stored[0]
    try:
        body = schemas.VariableIn(value=value, description=form.get("description", ""))
        secret_routes.put_variable(key, body, ctx)
    except (DuctworkError, ValidationError) as exc:
        status, message = _refusal(exc)
        shown = {**form, "key": key, "value": "" if is_secret_name(key) else form.get("value", "")}
        return _variable_form(request, creating=False, values=shown, error=message, status_code=status)
    return _back("/variables", saved=key)


@router.get("/variables/{key}/delete")
def variable_delete_form(request: Request, key: Name) -> Response:
    require_page_role(request, "admin")
    return _confirm(request, "variable", key, f"/variables/{_q(key)}/delete", "/variables")


@router.post("/variables/{key}/delete")
def variable_delete_submit(request: Request, key: Name, ctx: WebContext = Depends(web_context)) -> Response:
    require_page_role(request, "admin")
    try:
        secret_routes.delete_variable(key, ctx)
    except DuctworkError as exc:
        status, message = _refusal(exc)
        return _confirm(request, "variable", key, "", "/variables", error=message, status_code=status)
    return _back("/variables", deleted=key)


# --- users ---------------------------------------------------------------------------------------
def _users_page(
    request: Request,
    ctx: WebContext,
    *,
    error: str = "",
    notice: str = "",
    values: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return page(
        request,
        "users.html",
        status_code=status_code,
        users=account_routes.list_users(ctx),
        roles=ROLES,
        error=error,
        notice=notice,
        values=values or {},
    )


@router.get("/users")
def users_page(
    request: Request,
    ctx: WebContext = Depends(web_context),
    saved: str = Query("", max_length=MAX_NAME),
    deleted: str = Query("", max_length=MAX_NAME),
) -> Response:
    """Admins only, as ``/api/v1/users``."""
    require_page_role(request, "admin")
    notice = f"User {saved} saved." if saved else f"User {deleted} deleted." if deleted else ""
    return _users_page(request, ctx, notice=notice)


@router.post("/users")
async def user_create_submit(request: Request, ctx: WebContext = Depends(web_context)) -> Response:
    require_page_role(request, "admin")
    form = await _form(request)
    try:
        username = _new_name("user", form.get("username", ""))
        role = form.get("role", "viewer")
        if role not in ROLES:
            raise FormError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        body = schemas.UserIn.model_validate({"username": username, "password": form.get("password", ""), "role": role})
        account_routes.create_user(body, ctx)
    except (DuctworkError, ValidationError) as exc:
        status, message = _refusal(exc)
        kept = {k: v for k, v in form.items() if k != "password"}
        return _users_page(request, ctx, error=message, values=kept, status_code=status)
    return _back("/users", saved=username)


@router.post("/users/{username}/role")
async def user_role_submit(request: Request, username: Name, ctx: WebContext = Depends(web_context)) -> Response:
    """A new role (the API's ``PATCH /users/{name}``); demoting the last admin is refused there."""
    require_page_role(request, "admin")
    form = await _form(request)
    try:
        role = form.get("role", "")
        if role not in ROLES:
            raise FormError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
        account_routes.change_user(username, schemas.UserChange.model_validate({"role": role}), ctx)
    except (DuctworkError, ValidationError) as exc:
        status, message = _refusal(exc)
        return _users_page(request, ctx, error=message, status_code=status)
    return _back("/users", saved=username)


@router.post("/users/{username}/password")
async def user_password_submit(request: Request, username: Name, ctx: WebContext = Depends(web_context)) -> Response:
    """A new password (the API's ``PATCH /users/{name}``); the user's browser sessions end."""
    require_page_role(request, "admin")
    form = await _form(request)
    try:
        change = schemas.UserChange.model_validate({"password": form.get("password", "")})
        account_routes.change_user(username, change, ctx)
    except (DuctworkError, ValidationError) as exc:
        status, message = _refusal(exc)
        return _users_page(request, ctx, error=message, status_code=status)
    return _back("/users", saved=username)


@router.get("/users/{username}/delete")
def user_delete_form(request: Request, username: Name) -> Response:
    require_page_role(request, "admin")
    return _confirm(request, "user", username, f"/users/{_q(username)}/delete", "/users")


@router.post("/users/{username}/delete")
def user_delete_submit(request: Request, username: Name, ctx: WebContext = Depends(web_context)) -> Response:
    """The API's ``DELETE /users/{name}``: not yourself, and never the last admin."""
    require_page_role(request, "admin")
    try:
        account_routes.delete_user(username, current_principal(request), ctx)
    except DuctworkError as exc:
        status, message = _refusal(exc)
        return _users_page(request, ctx, error=message, status_code=status)
    return _back("/users", deleted=username)


# --- shared --------------------------------------------------------------------------------------
def _confirm(
    request: Request,
    kind: str,
    name: str,
    action: str,
    back: str,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    """The page that asks "Delete ...?" (the post needs the session's CSRF token, so a link
    elsewhere cannot delete anything)."""
    return page(
        request,
        "confirm_delete.html",
        status_code=status_code,
        kind=kind,
        target=name,
        action=action,
        back=back,
        error=error,
    )


def _gone(request: Request, kind: str, name: str) -> Response:
    from ductwork.web.render import html_error

    return html_error(request, 404, f"no {kind} {name!r} in the database")
