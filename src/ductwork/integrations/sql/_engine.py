"""SQLAlchemy engines from URLs, JSON-friendly rows, and splitting a script into statements."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import re
import uuid
from collections.abc import Mapping
from typing import Any

from ductwork.errors import DuctworkError
from ductwork.integrations._deps import MissingDependencyError

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_DRIVER_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def make_engine(url: str, *, what: str, engine_options: Mapping[str, Any] | None = None) -> Any:
    """An engine for ``url`` (no connection is made yet). Without ``engine_options`` it does not
    pool connections: tasks are short and the database is shared with other workers."""
    import sqlalchemy as sa
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError
    from sqlalchemy.pool import NullPool

    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise DuctworkError(
            f"{what}: {url!r} is not a database URL; expected dialect+driver://user:password@host/database, "
            f"e.g. postgresql+psycopg://user@localhost/db or sqlite:///path/to.db"
        ) from None
    options = dict(engine_options) if engine_options is not None else {"poolclass": NullPool}
    try:
        return sa.create_engine(parsed, **options)
    except NoSuchModuleError:
        raise DuctworkError(
            f"{what}: unknown database scheme {parsed.drivername!r} in {redact(url)}; use a SQLAlchemy dialect such "
            f"as sqlite, postgresql+psycopg or mysql+pymysql"
        ) from None
    except ImportError as exc:
        extra = _DRIVER_EXTRAS.get(parsed.get_backend_name())
        hint = f"pip install 'ductwork[{extra}]'" if extra else f"install the driver for {parsed.drivername!r}"
        raise MissingDependencyError(
            f"{what}: the database driver for {parsed.drivername!r} is not installed ({exc}); {hint}"
        ) from exc


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    import sqlalchemy as sa

    try:
        return str(sa.make_url(url).render_as_string(hide_password=True))
    except Exception:
        return "<unparseable URL>"


def json_value(value: Any) -> Any:
    """A value from a database row as something JSON can hold."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return str(value)


def json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): json_value(v) for k, v in row.items()}


def split_statements(script: str) -> list[str]:
    """Split a SQL script on the semicolons that end statements.

    Semicolons inside quotes (``'...'``, ``"..."``, backticks), ``-- comments``,
    ``/* comments */`` and PostgreSQL dollar quotes (``$$...$$``, ``$tag$...$tag$``) do not
    split. Empty statements are dropped.
    """
    out: list[str] = []
    buf: list[str] = []
    i, n = 0, len(script)
    while i < n:
        c = script[i]
        if c in "'\"`":
            end = _closing_quote(script, i, c)
            buf.append(script[i:end])
            i = end
        elif script.startswith("--", i):
            end = script.find("\n", i)
            end = n if end < 0 else end
            buf.append(script[i:end])
            i = end
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            end = n if end < 0 else end + 2
            buf.append(script[i:end])
            i = end
        elif c == "$" and (tag := _dollar_tag(script, i)):
            end = script.find(tag, i + len(tag))
            end = n if end < 0 else end + len(tag)
            buf.append(script[i:end])
            i = end
        elif c == ";":
            out.append("".join(buf))
            buf = []
            i += 1
        else:
            buf.append(c)
            i += 1
    out.append("".join(buf))
    return [s.strip() for s in out if _has_code(s)]


def _closing_quote(script: str, start: int, quote: str) -> int:
    i = start + 1
    while i < len(script):
        if script[i] == "\\" and quote != "`":
            i += 2
            continue
        if script[i] == quote:
            if script.startswith(quote * 2, i):  # a doubled quote is an escaped quote
                i += 2
                continue
            return i + 1
        i += 1
    return len(script)


def _dollar_tag(script: str, start: int) -> str:
    end = script.find("$", start + 1)
    if end < 0:
        return ""
    tag = script[start : end + 1]
    body = tag[1:-1]
    if body and not (body.replace("_", "a").isalnum() and not body[0].isdigit()):
        return ""
    return tag


def _has_code(statement: str) -> bool:
    """Whether a statement holds anything but whitespace and comments."""
    return bool(_COMMENTS.sub("", statement).strip())
