"""executemany for the scheduler's hot path: statements compiled once, values converted once.

SQLAlchemy's generic path spends more time preparing each row's parameters (type processors
run value by value, parameter dictionaries are rebuilt per row) than SQLite spends executing
the row. The statements the scheduler writes every step have a fixed shape, so this module
compiles each one once per dialect, resolves each parameter's conversion once (from the
column's type), and hands the driver plain tuples, inside the caller's transaction.

Only for statements built from this package's tables with ``bindparam``s named after their
columns (``b_<column>``) or plain column values; everything else uses ``conn.execute``.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import ClauseElement

from ductwork.store.types import JsonText, UtcDateTime

Converter = Callable[[Any], Any]

_PREPARED: dict[tuple[int, str, tuple[str, ...]], tuple[str, tuple[str, ...], tuple[Converter | None, ...]]] = {}


def _datetime_converter(dialect: str) -> Converter:
    utc = dt.UTC

    def aware(value: Any) -> Any:
        if value is None or value.tzinfo is utc:
            return value
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to the store")
        return value.astimezone(utc)

    if dialect == "postgresql":
        return aware

    def naive(value: Any) -> Any:
        return None if value is None else aware(value).replace(tzinfo=None)

    if dialect != "sqlite":
        return naive

    last: list[Any] = [None, None]

    def text(value: Any) -> Any:
        # The format SQLAlchemy's SQLite DATETIME writes (always with microseconds), so values
        # written here compare and sort with values written through SQLAlchemy. A step's rows
        # share a few timestamps (every event of a step has the same one): the last is kept.
        if value is None:
            return None
        if value is last[0]:
            return last[1]
        if value.tzinfo is utc:
            result = value.isoformat(" ", "microseconds")[:-6]  # without "+00:00"
        else:
            result = naive(value).isoformat(" ", "microseconds")
        last[0], last[1] = value, result
        return result

    return text


def _converter(type_: Any, dialect: Any) -> Converter | None:
    if isinstance(type_, UtcDateTime):
        return _datetime_converter(dialect.name)
    if isinstance(type_, JsonText):
        return lambda value: type_.process_bind_param(value, dialect)
    processor = type_.bind_processor(dialect)
    return processor


def _prepare(
    conn: Connection, stmt: ClauseElement, keys: tuple[str, ...]
) -> tuple[str, tuple[str, ...], tuple[Converter | None, ...]]:
    dialect = conn.dialect
    cache_key = (id(stmt), dialect.name, keys)
    prepared = _PREPARED.get(cache_key)
    if prepared is None:
        compiled: Any = stmt.compile(dialect=dialect, column_keys=list(keys))
        if compiled.positional:
            names = tuple(compiled.positiontup)
        else:
            names = tuple(dict.fromkeys(compiled.bind_names.values()))
        binds = {b.key: b for b in compiled.binds.values()}
        converters = tuple(_converter(binds[name].type, dialect) if name in binds else None for name in names)
        prepared = (compiled.string, names, converters)
        _PREPARED[cache_key] = prepared
    return prepared


def executemany(conn: Connection, stmt: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
    """``conn.execute(stmt, rows)``, faster for statements whose shape never changes.

    ``stmt`` must be long-lived (it is cached by identity) and every row must carry every
    parameter of the statement.
    """
    if not rows:
        return
    sql, names, converters = _prepare(conn, stmt, tuple(rows[0]))
    take = operator.itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    converting = [(i, c) for i, c in enumerate(converters) if c is not None]
    values: list[Any] = []
    for row in rows:
        value = take(row)
        if converting:
            mutable = list(value)
            for i, convert in converting:
                mutable[i] = convert(mutable[i])
            value = tuple(mutable)
        values.append(value)
    if conn.dialect.paramstyle in ("qmark", "format", "numeric"):
        params: Any = values
    else:
        params = [dict(zip(names, value, strict=True)) for value in values]
    conn.exec_driver_sql(sql, params)
