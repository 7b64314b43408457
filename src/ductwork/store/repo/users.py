"""Users, API tokens and browser sessions of the web server.

The repository stores what it is given: a password *hash* (hashing is the caller's job, see
``ductwork.services.accounts``), and SHA-256 digests of tokens and session ids. Nothing here
ever sees a secret in clear. Like every repository, functions run inside the caller's
transaction and never commit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ductwork.errors import InvalidTransitionError, NotFoundError
from ductwork.store.errors import StoreError
from ductwork.store.repo._util import inserted_pk
from ductwork.store.tables import api_tokens, users, web_sessions
from ductwork.store.types import utcnow

ROLES = ("admin", "operator", "viewer")


class UserExistsError(StoreError):
    """A user with this name already exists."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    username: str
    role: str
    created_at: dt.datetime
    last_login_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    user_id: int
    username: str
    name: str
    prefix: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    user: UserRecord
    csrf_token: str
    expires_at: dt.datetime


_USER_COLUMNS = (users.c.id, users.c.username, users.c.role, users.c.created_at, users.c.last_login_at)


def _user(row: Any) -> UserRecord:  # a Row of _USER_COLUMNS (and maybe more)
    return UserRecord(row.id, row.username, row.role, row.created_at, row.last_login_at)


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")


# --- users -----------------------------------------------------------------------------------
def create_user(
    conn: Connection, username: str, password_hash: str, role: str, *, now: dt.datetime | None = None
) -> UserRecord:
    """Add a user; raises ``UserExistsError`` when the name is taken."""
    _check_role(role)
    if not username.strip():
        raise ValueError("a user name must not be empty")
    values = {
        "username": username,
        "password_hash": password_hash,
        "role": role,
        "created_at": now or utcnow(),
        "last_login_at": None,
    }
    try:
        with conn.begin_nested():
            pk = inserted_pk(conn.execute(sa.insert(users).values(values)))
    except IntegrityError:
        raise UserExistsError(f"a user named {username!r} already exists") from None
    record = get_user_by_id(conn, pk)
    assert record is not None
    return record


def get_user(conn: Connection, username: str) -> UserRecord | None:
    row = conn.execute(sa.select(*_USER_COLUMNS).where(users.c.username == username)).first()
    return _user(row) if row is not None else None


def get_user_by_id(conn: Connection, user_id: int) -> UserRecord | None:
    row = conn.execute(sa.select(*_USER_COLUMNS).where(users.c.id == user_id)).first()
    return _user(row) if row is not None else None


def password_hash(conn: Connection, username: str) -> tuple[UserRecord, str] | None:
    """The user and their stored password hash (for checking a login), or None."""
    row = conn.execute(sa.select(*_USER_COLUMNS, users.c.password_hash).where(users.c.username == username)).first()
    return (_user(row), row.password_hash) if row is not None else None


def list_users(conn: Connection) -> list[UserRecord]:
    return [_user(r) for r in conn.execute(sa.select(*_USER_COLUMNS).order_by(users.c.username))]


def count_users(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())


def set_password(conn: Connection, username: str, password_hash: str) -> None:
    _update_user(conn, username, password_hash=password_hash)


def set_role(conn: Connection, username: str, role: str) -> None:
    """Refused when it would leave no admin (nobody could manage users through the API or the
    UI any more)."""
    _check_role(role)
    before = get_user(conn, username)
    _update_user(conn, username, role=role)
    if before is not None and before.role == "admin" and role != "admin":
        _keep_an_admin(conn, username, "taking the admin role from")


def _keep_an_admin(conn: Connection, username: str, doing: str) -> None:
    """After an admin lost the role or was deleted: raise (the caller's transaction then undoes
    the change) when no admin is left but other users are."""
    admins = conn.execute(sa.select(sa.func.count()).select_from(users).where(users.c.role == "admin")).scalar_one()
    if admins == 0 and count_users(conn) > 0:
        raise InvalidTransitionError(
            f"{doing} {username!r} would leave no admin: give another user the admin role first "
            "(`ductwork users role NAME admin`)"
        )


def record_login(conn: Connection, user_id: int, *, now: dt.datetime | None = None) -> None:
    conn.execute(sa.update(users).where(users.c.id == user_id).values(last_login_at=now or utcnow()))


def delete_user(conn: Connection, username: str) -> None:
    """Delete a user with their tokens and sessions; ``NotFoundError`` for an unknown name."""
    user = get_user(conn, username)
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    conn.execute(sa.delete(web_sessions).where(web_sessions.c.user_id == user.id))
    conn.execute(sa.delete(api_tokens).where(api_tokens.c.user_id == user.id))
    if conn.execute(sa.delete(users).where(users.c.id == user.id)).rowcount == 0:
        # Deleted by another client between the look and the delete: this one deleted nothing.
        raise NotFoundError(f"no user {username!r}")
    if user.role == "admin":
        _keep_an_admin(conn, username, "deleting")


def _update_user(conn: Connection, username: str, **values: Any) -> None:
    if conn.execute(sa.update(users).where(users.c.username == username).values(**values)).rowcount == 0:
        raise NotFoundError(f"no user {username!r}")


# --- API tokens ------------------------------------------------------------------------------
_TOKEN_COLUMNS = (
    api_tokens.c.id,
    api_tokens.c.user_id,
    users.c.username,
    api_tokens.c.name,
    api_tokens.c.prefix,
    api_tokens.c.created_at,
    api_tokens.c.last_used_at,
    api_tokens.c.expires_at,
)


def _token(row: Any) -> TokenRecord:  # a Row of _TOKEN_COLUMNS
    return TokenRecord(
        row.id, row.user_id, row.username, row.name, row.prefix, row.created_at, row.last_used_at, row.expires_at
    )


def add_token(
    conn: Connection,
    user_id: int,
    name: str,
    token_hash: str,
    prefix: str,
    *,
    expires_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> TokenRecord:
    values = {
        "user_id": user_id,
        "name": name,
        "token_hash": token_hash,
        "prefix": prefix,
        "created_at": now or utcnow(),
        "last_used_at": None,
        "expires_at": expires_at,
    }
    pk = inserted_pk(conn.execute(sa.insert(api_tokens).values(values)))
    row = conn.execute(sa.select(*_TOKEN_COLUMNS).join_from(api_tokens, users).where(api_tokens.c.id == pk)).one()
    return _token(row)


def user_for_token(
    conn: Connection, token_hash: str, *, now: dt.datetime | None = None
) -> tuple[UserRecord, TokenRecord] | None:
    """The user a token belongs to, unless the token is unknown or expired."""
    now = now or utcnow()
    row = conn.execute(
        sa.select(*_USER_COLUMNS, *(c.label(f"t_{c.name}") for c in api_tokens.c if c.name != "token_hash"))
        .join_from(api_tokens, users)
        .where(api_tokens.c.token_hash == token_hash)
    ).first()
    if row is None or (row.t_expires_at is not None and row.t_expires_at <= now):
        return None
    token = TokenRecord(
        row.t_id,
        row.t_user_id,
        row.username,
        row.t_name,
        row.t_prefix,
        row.t_created_at,
        row.t_last_used_at,
        row.t_expires_at,
    )
    return _user(row), token


def touch_token(conn: Connection, token_id: int, *, now: dt.datetime | None = None) -> None:
    conn.execute(sa.update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now or utcnow()))


def list_tokens(conn: Connection, user_id: int | None = None) -> list[TokenRecord]:
    stmt = sa.select(*_TOKEN_COLUMNS).join_from(api_tokens, users).order_by(users.c.username, api_tokens.c.id)
    if user_id is not None:
        stmt = stmt.where(api_tokens.c.user_id == user_id)
    return [_token(r) for r in conn.execute(stmt)]


def delete_token(conn: Connection, token_id: int, *, user_id: int | None = None) -> None:
    """Revoke a token (only one of ``user_id``'s when given); ``NotFoundError`` if there is none."""
    stmt = sa.delete(api_tokens).where(api_tokens.c.id == token_id)
    if user_id is not None:
        stmt = stmt.where(api_tokens.c.user_id == user_id)
    if conn.execute(stmt).rowcount == 0:
        raise NotFoundError(f"no API token {token_id}")


# --- browser sessions ------------------------------------------------------------------------
def add_session(
    conn: Connection,
    session_hash: str,
    user_id: int,
    csrf_token: str,
    *,
    expires_at: dt.datetime,
    now: dt.datetime | None = None,
) -> None:
    now = now or utcnow()
    conn.execute(sa.delete(web_sessions).where(web_sessions.c.expires_at <= now))  # keep the table small
    conn.execute(
        sa.insert(web_sessions).values(
            session_hash=session_hash, user_id=user_id, csrf_token=csrf_token, created_at=now, expires_at=expires_at
        )
    )


def get_session(conn: Connection, session_hash: str, *, now: dt.datetime | None = None) -> SessionRecord | None:
    """The live session with this id digest and its user, or None (unknown or expired)."""
    row = conn.execute(
        sa.select(*_USER_COLUMNS, web_sessions.c.csrf_token, web_sessions.c.expires_at)
        .join_from(web_sessions, users)
        .where(web_sessions.c.session_hash == session_hash)
    ).first()
    if row is None or row.expires_at <= (now or utcnow()):
        return None
    return SessionRecord(_user(row), row.csrf_token, row.expires_at)


def delete_session(conn: Connection, session_hash: str) -> None:
    conn.execute(sa.delete(web_sessions).where(web_sessions.c.session_hash == session_hash))


def delete_sessions_of(conn: Connection, username: str) -> int:
    """End every browser session of a user (after a change to what their login stands for);
    returns how many there were."""
    user_ids = sa.select(users.c.id).where(users.c.username == username).scalar_subquery()
    return int(conn.execute(sa.delete(web_sessions).where(web_sessions.c.user_id == user_ids)).rowcount or 0)
