"""Accounts of the web server, shared by the CLI (``ductwork users``, ``ductwork tokens``) and the
API: users with argon2-hashed passwords, API tokens and browser sessions.

Secrets are generated here, returned once to the caller, and stored only as digests: a
password as an argon2id hash (slow on purpose, because people choose guessable passwords); an
API token or a session id as SHA-256 (they are 256 random bits, so a fast digest is as safe
and lets every request be checked with one indexed lookup).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from ductwork.errors import DuctworkError, NotFoundError, ParameterError
from ductwork.services.names import check_new_name, refuse_control_characters
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import users as repo
from ductwork.store.repo.users import ROLES, SessionRecord, TokenRecord, UserRecord
from ductwork.store.types import utcnow

TOKEN_PREFIX = "dwt_"
SESSION_LIFETIME = dt.timedelta(hours=12)
TOKEN_TOUCH_INTERVAL = dt.timedelta(minutes=1)
MIN_PASSWORD_LENGTH = 8

__all__ = [
    "ROLES",
    "AuthenticationError",
    "IssuedToken",
    "NewSession",
    "SessionRecord",
    "TokenRecord",
    "UserRecord",
    "authenticate",
    "create_user",
    "issue_token",
    "role_allows",
    "set_password",
    "set_role",
]


class AuthenticationError(DuctworkError):
    """Wrong user name or password (the message never says which)."""


_RANK = {"viewer": 0, "operator": 1, "admin": 2}


def role_allows(role: str, needed: str) -> bool:
    """Whether ``role`` may do what ``needed`` may (admin > operator > viewer)."""
    return _RANK.get(role, -1) >= _RANK[needed]


def _hasher() -> Any:
    from argon2 import PasswordHasher  # the web extra; imported only when accounts are used

    return PasswordHasher()


def hash_password(password: str) -> str:
    return str(_hasher().hash(password))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def _check_username(username: str) -> None:
    """Refuse, with the reason, a name of blanks only. Python counts more characters as blank
    than the API's pattern does (the control characters \\x1c-\\x1f, \\x85): such a name
    got past it and the store's own check ended the request with a server error."""
    if not username.strip():
        raise ParameterError(f"user name {username!r}: it needs a character other than spaces and control characters")
    check_new_name("user", username)  # 'dana ' is not the 'dana' one logs in with; the form trimmed it


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise DuctworkError(f"a password must have at least {MIN_PASSWORD_LENGTH} characters")


def create_user(engine: Engine, username: str, password: str, role: str = "viewer") -> UserRecord:
    """Add a user; the password is stored as an argon2 hash only."""
    if role not in ROLES:
        raise DuctworkError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    _check_username(username)
    _check_password(password)
    hashed = hash_password(password)
    with transaction(engine) as conn:
        return repo.create_user(conn, username, hashed, role)


def set_password(engine: Engine, username: str, password: str) -> None:
    """A new password; it ends the user's browser sessions (whoever knew the old one is out)."""
    _check_password(password)
    hashed = hash_password(password)
    with transaction(engine) as conn:
        repo.set_password(conn, username, hashed)
        repo.delete_sessions_of(conn, username)


def set_role(engine: Engine, username: str, role: str) -> UserRecord:
    """A new role; it ends the user's browser sessions, so the change is felt at once and a
    session opened under the old role cannot outlive it."""
    if role not in ROLES:
        raise DuctworkError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    with transaction(engine) as conn:
        repo.set_role(conn, username, role)
        repo.delete_sessions_of(conn, username)
        user = repo.get_user(conn, username)
    assert user is not None
    return user


def authenticate(engine: Engine, username: str, password: str) -> UserRecord:
    """The user whose name and password these are; ``AuthenticationError`` otherwise."""
    from argon2.exceptions import InvalidHashError, VerificationError

    with read_transaction(engine) as conn:
        found = repo.password_hash(conn, username)
    hasher = _hasher()
    if found is None:
        hasher.hash(password)  # spend the same time, so timing does not tell which names exist
        raise AuthenticationError("wrong user name or password")
    user, stored = found
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        raise AuthenticationError("wrong user name or password") from None
    with transaction(engine) as conn:
        repo.record_login(conn, user.id)
        if hasher.check_needs_rehash(stored):
            repo.set_password(conn, username, hasher.hash(password))
    return user


# --- API tokens ------------------------------------------------------------------------------
@dataclass(frozen=True)
class IssuedToken:
    token: str
    """The secret itself: shown once, never stored."""
    record: TokenRecord


def issue_token(engine: Engine, username: str, name: str, *, expires_in: dt.timedelta | None = None) -> IssuedToken:
    """A new API token for ``username``; its secret is in the result and nowhere else."""
    if not name.strip():  # listed with an empty name, and "Revoke    ?" asked which
        raise ParameterError(
            f"token name {name!r}: it needs a character other than spaces, to tell it from your other tokens"
        )
    refuse_control_characters("token name", name)  # 'a\nb' was listed as two rows by `tokens list`
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction(engine) as conn:
        user = repo.get_user(conn, username)
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        expires_at = utcnow() + expires_in if expires_in is not None else None
        record = repo.add_token(conn, user.id, name, digest(secret), secret[:10], expires_at=expires_at)
    return IssuedToken(secret, record)


def user_for_token(engine: Engine, secret: str) -> UserRecord | None:
    """The user an ``Authorization: Bearer`` token stands for, or None."""
    now = utcnow()
    with read_transaction(engine) as conn:
        found = repo.user_for_token(conn, digest(secret), now=now)
    if found is None:
        return None
    user, token = found
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        with transaction(engine) as conn:  # at most one write a minute per token, not one per request
            repo.touch_token(conn, token.id, now=now)
    return user


# --- sessions --------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewSession:
    session_id: str
    """Goes into the cookie; only its digest is stored."""
    csrf_token: str
    expires_at: dt.datetime


def start_session(engine: Engine, user: UserRecord, *, lifetime: dt.timedelta = SESSION_LIFETIME) -> NewSession:
    session_id = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires_at = utcnow() + lifetime
    with transaction(engine) as conn:
        repo.add_session(conn, digest(session_id), user.id, csrf, expires_at=expires_at)
    return NewSession(session_id, csrf, expires_at)


def find_session(engine: Engine, session_id: str) -> SessionRecord | None:
    with read_transaction(engine) as conn:
        return repo.get_session(conn, digest(session_id))


def end_session(engine: Engine, session_id: str) -> None:
    with transaction(engine) as conn:
        repo.delete_session(conn, digest(session_id))


def has_users(engine: Engine) -> bool:
    """Whether anyone can log in at all: a web server started on its own (``ductwork
    webserver``, the Kubernetes manifests) creates no user, unlike ``standalone``."""
    with read_transaction(engine) as conn:
        return repo.count_users(conn) > 0


def ensure_admin(engine: Engine, username: str = "admin") -> str | None:
    """Create an admin with a random password when there are no users at all; returns the
    password (to show once), or None when users exist already."""
    with read_transaction(engine) as conn:
        if repo.count_users(conn) > 0:
            return None
    password = generate_password()
    create_user(engine, username, password, "admin")
    return password
