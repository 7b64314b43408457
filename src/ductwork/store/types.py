"""Column types that behave the same on SQLite, PostgreSQL and MariaDB.

This is the one place where backend differences in time zones and JSON are normalized:

- ``UtcDateTime`` stores UTC and always returns aware UTC datetimes. PostgreSQL keeps the
  offset itself (``timestamptz``); SQLite and MariaDB drop it, so values are converted to
  naive UTC on the way in and marked UTC on the way out. A naive datetime is refused rather
  than guessed at, because guessing is how runs end up an hour off.
- ``JsonText`` and ``TaggedJsonText`` store JSON as text (``LONGTEXT`` on MariaDB, whose
  ``TEXT`` stops at 64 KiB and whose ``JSON`` type reflects as text anyway). ``TaggedJsonText``
  uses ``ductwork.store.codec`` so that run parameters holding dates come back as dates.

The migrations import these types, so their storage format must never change in place; a new
format means a new type and a migration.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import DateTime, Dialect, LargeBinary, String, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.types import TypeDecorator, TypeEngine

from ductwork.store import codec

ID_LENGTH = 250
"""Length of flow, run, task, pool and result key ids: short enough for composite keys on
MariaDB (3072 bytes per index with utf8mb4)."""


def utcnow() -> dt.datetime:
    """The current time, aware and in UTC (the default when a caller gives no ``now``)."""
    return dt.datetime.now(dt.UTC)


def as_utc(value: dt.datetime) -> dt.datetime:
    """``value`` converted to UTC; naive values are refused with a message that says why."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} given to the store: pass a timezone-aware datetime "
            "(for example datetime.now(datetime.UTC)), so that it is not misread in another zone"
        )
    return value.astimezone(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and returned as an aware UTC datetime on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        utc = as_utc(value)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite hands back text when the column was written by hand
            value = dt.datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def long_text() -> TypeEngine[str]:
    """Text of any length on every backend (``LONGTEXT`` on MariaDB)."""
    return Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def long_binary() -> TypeEngine[bytes]:
    """Bytes of any length on every backend (``LONGBLOB`` on MariaDB)."""
    return LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")


def id_string() -> String:
    return String(ID_LENGTH)


class JsonText(TypeDecorator[Any]):
    """Plain JSON (graphs, tags, upstream lists) stored as text."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.LONGTEXT())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return json.loads(value)


class TaggedJsonText(JsonText):
    """JSON that round-trips dates, tuples and other values (run params, conf, rendered fields)."""

    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return codec.dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return codec.loads(value)
