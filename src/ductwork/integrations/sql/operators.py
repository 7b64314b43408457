"""Run SQL on any SQLAlchemy database, and copy query results between databases."""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.operators.base import BaseOperator
from ductwork.errors import DefinitionError, TaskExecutionError
from ductwork.integrations._connections import task_connection
from ductwork.integrations.sql._engine import json_row, make_engine, redact, split_statements

Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]]


def _owner(cls: type, kwargs: Mapping[str, Any]) -> str:
    return f"{cls.__name__}(task_id={kwargs.get('task_id')!r})"


def _statements(sql: str | Sequence[str], split: bool) -> list[str]:
    if isinstance(sql, str):
        return split_statements(sql) if split else [sql]
    out: list[str] = []
    for item in sql:
        out.extend(split_statements(item) if split else [item])
    return out


class _Cancellable:
    """Keeps the DBAPI connection of the running statement so ``on_kill`` can cancel it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._dbapi: Any = None

    def attach(self, connection: Any) -> None:
        with self._lock:
            self._dbapi = connection.connection.dbapi_connection

    def detach(self) -> None:
        with self._lock:
            self._dbapi = None

    def cancel(self) -> None:
        with self._lock:
            dbapi = self._dbapi
        if dbapi is None:
            return
        cancel = getattr(dbapi, "cancel", None)  # psycopg: cancels the running query server-side
        try:
            cancel() if cancel is not None else dbapi.close()
        except Exception:
            pass


class SqlOperator(BaseOperator):
    """Runs SQL statements on a database; the rows of the last query go downstream.

    Args:
        url: a SQLAlchemy URL (``postgresql+psycopg://user@host/db``, ``mysql+pymysql://...``,
            ``sqlite:///file.db``).
        conn_id: instead of ``url``, a connection (``postgres://...``, ``mysql://...``,
            ``sqlite:///path``) looked up when the task runs.
        sql: a statement, or a list of them (templated). Bind values with ``:name``.
        parameters: values for the ``:name`` placeholders (templated); a list of mappings runs
            a statement once per mapping.
        split_statements: split ``sql`` on the semicolons ending statements (quotes, comments
            and dollar quotes are respected).
        autocommit: run each statement in its own transaction (for ``VACUUM``, ``CREATE
            DATABASE``...); by default all statements share one transaction, which is rolled
            back if any fails.
        max_rows: most rows passed downstream (``None`` for all); the rest are dropped with a
            warning in the log.
        engine_options: keyword arguments for ``sqlalchemy.create_engine``.

    Returns rows as a list of JSON-friendly dictionaries (dates as ISO strings, decimals as
    numbers, bytes as base64), or ``None`` when no statement returned rows.
    """

    template_fields = ("sql", "parameters")
    ui_color = "#cdaaed"

    def __init__(
        self,
        *,
        url: str = "",
        conn_id: str | None = None,
        sql: str | Sequence[str],
        parameters: Parameters | None = None,
        split_statements: bool = False,
        autocommit: bool = False,
        max_rows: int | None = 1000,
        engine_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        _check_url(url, conn_id, _owner(type(self), kwargs))
        if not sql or not (isinstance(sql, str) or all(isinstance(s, str) for s in sql)):
            raise DefinitionError(f"{_owner(type(self), kwargs)}: sql must be a statement or a list of statements")
        if max_rows is not None and max_rows < 0:
            raise DefinitionError(f"{_owner(type(self), kwargs)}: max_rows must be at least 0 or None")
        super().__init__(**kwargs)
        self.url = url
        self.conn_id = conn_id
        self.sql = sql
        self.parameters = parameters
        self.split_statements = split_statements
        self.autocommit = autocommit
        self.max_rows = max_rows
        self.engine_options = engine_options
        self._running = _Cancellable()

    def execute(self, context: TaskContext) -> list[dict[str, Any]] | None:
        import sqlalchemy as sa

        statements = _statements(self.sql, self.split_statements)
        self.url = resolve_url(context, self.url, self.conn_id, self.task_id)
        engine = make_engine(self.url, what=f"task {self.task_id!r}", engine_options=self.engine_options)
        where = redact(self.url)
        rows: list[dict[str, Any]] | None = None
        self._running = _Cancellable()
        try:
            with self._connect(engine) as conn:
                self._running.attach(conn)
                for number, statement in enumerate(statements, 1):
                    fetched = self._run_one(conn, statement, number, len(statements), context)
                    rows = fetched if fetched is not None else rows
        except sa.exc.DBAPIError as exc:
            raise TaskExecutionError(f"task {self.task_id!r}: cannot run SQL on {where}: {_db_message(exc)}") from exc
        finally:
            self._running.detach()
            engine.dispose()
        return rows

    def _run_one(
        self, conn: Any, statement: str, number: int, count: int, context: TaskContext
    ) -> list[dict[str, Any]] | None:
        import sqlalchemy as sa

        where = redact(self.url)
        context["log"].info("statement %d of %d on %s:\n%s", number, count, where, statement)
        try:
            result = conn.execute(sa.text(statement), self.parameters)
        except sa.exc.DBAPIError as exc:
            raise TaskExecutionError(
                f"task {self.task_id!r}: statement {number} of {count} failed on {where}: {_db_message(exc)}"
            ) from exc
        if result.returns_rows:
            return self._fetch(result, context)
        if result.rowcount is not None and result.rowcount >= 0:
            context["log"].info("%d row(s) affected", result.rowcount)
        return None

    def _connect(self, engine: Any) -> Any:
        if self.autocommit:
            return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return engine.begin()

    def _fetch(self, result: Any, context: TaskContext) -> list[dict[str, Any]]:
        mappings = result.mappings()
        if self.max_rows is None:
            return [json_row(r) for r in mappings.all()]
        fetched = mappings.fetchmany(self.max_rows + 1)
        if len(fetched) > self.max_rows:
            context["log"].warning(
                "the query returned more than max_rows=%d rows; only the first %d go downstream",
                self.max_rows,
                self.max_rows,
            )
            fetched = fetched[: self.max_rows]
        return [json_row(r) for r in fetched]

    def on_kill(self) -> None:
        self._running.cancel()

    def extra_spec(self) -> dict[str, Any]:
        where = redact(self.url) if self.url else f"connection {self.conn_id}"
        return {"url": where, "sql": self.sql if isinstance(self.sql, str) else list(self.sql)}


def _check_url(url: str, conn_id: str | None, owner: str) -> None:
    if conn_id is not None and url:
        raise DefinitionError(f"{owner}: give url or conn_id, not both")
    if conn_id is None and (not isinstance(url, str) or not url):
        raise DefinitionError(f"{owner}: give url (a SQLAlchemy URL string) or conn_id (a connection)")


def resolve_url(context: Mapping[str, Any], url: str, conn_id: str | None, task_id: str) -> str:
    """``url``, or the SQLAlchemy URL of the connection ``conn_id`` (its password masked in logs)."""
    if conn_id is None:
        return url
    return task_connection(context, conn_id, task_id).sqlalchemy_url()


def _where(url: str, conn_id: str | None) -> str:
    return redact(url) if url else f"connection {conn_id}"


def _db_message(exc: Any) -> str:
    orig = getattr(exc, "orig", None)
    return f"{type(orig).__name__}: {orig}".strip() if orig is not None else str(exc)


# --- copying between databases -------------------------------------------------------------------
APPEND = "append"
REPLACE = "replace"


def infer_type(values: Sequence[Any]) -> Any:
    """A portable SQLAlchemy column type for the non-null values seen in one column."""
    import sqlalchemy as sa

    sample = next((v for v in values if v is not None), None)
    if isinstance(sample, bool):
        return sa.Boolean()
    if isinstance(sample, int):
        return sa.BigInteger()
    if isinstance(sample, float):
        return sa.Float()
    if isinstance(sample, decimal.Decimal):
        exps = [v.as_tuple().exponent for v in values if isinstance(v, decimal.Decimal)]
        scale = min(18, max([-e for e in exps if isinstance(e, int)] + [0]))
        return sa.Numeric(38, scale)
    if isinstance(sample, dt.datetime):
        return sa.DateTime(timezone=sample.tzinfo is not None)
    if isinstance(sample, dt.date):
        return sa.Date()
    if isinstance(sample, dt.time):
        return sa.Time()
    if isinstance(sample, bytes | bytearray | memoryview):
        return sa.LargeBinary()
    if isinstance(sample, dict | list):
        return sa.JSON()
    return sa.Text()


class SqlTransferOperator(BaseOperator):
    """Copies the result of a query on one database into a table of another, in batches.

    Args:
        source_url: where ``sql`` runs (templated ``sql`` and ``parameters``); or
            ``source_conn_id``, a connection.
        destination_url: the database that receives the rows; or ``destination_conn_id``.
        table: the destination table (``schema`` optional).
        mode: ``"append"`` adds rows; ``"replace"`` deletes the table's rows first. Deleting
            and inserting happen in one destination transaction, so a failed copy leaves the
            table as it was.
        create_table: create the table when it does not exist, with column types inferred from
            the first batch (or given in ``column_types``, name to SQLAlchemy type).
        batch_size: rows fetched from the source and inserted into the destination at a time.

    Returns ``{"rows": copied, "batches": n, "table": name}``.
    """

    template_fields = ("sql", "parameters", "table")
    ui_color = "#b0a0e8"

    def __init__(
        self,
        *,
        source_url: str = "",
        sql: str,
        destination_url: str = "",
        table: str,
        source_conn_id: str | None = None,
        destination_conn_id: str | None = None,
        schema: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        mode: str = APPEND,
        create_table: bool = False,
        column_types: Mapping[str, Any] | None = None,
        batch_size: int = 1000,
        **kwargs: Any,
    ) -> None:
        owner = _owner(type(self), kwargs)
        if mode not in (APPEND, REPLACE):
            raise DefinitionError(f"{owner}: mode must be 'append' or 'replace', got {mode!r}")
        if batch_size < 1:
            raise DefinitionError(f"{owner}: batch_size must be at least 1")
        if not table:
            raise DefinitionError(f"{owner}: table must be a table name")
        _check_url(source_url, source_conn_id, owner + " (source)")
        _check_url(destination_url, destination_conn_id, owner + " (destination)")
        super().__init__(**kwargs)
        self.source_conn_id = source_conn_id
        self.destination_conn_id = destination_conn_id
        self.source_url = source_url
        self.sql = sql
        self.destination_url = destination_url
        self.table = table
        self.schema = schema
        self.parameters = parameters
        self.mode = mode
        self.create_table = create_table
        self.column_types = dict(column_types or {})
        self.batch_size = batch_size

    def execute(self, context: TaskContext) -> dict[str, Any]:
        import sqlalchemy as sa

        what = f"task {self.task_id!r}"
        self.source_url = resolve_url(context, self.source_url, self.source_conn_id, self.task_id)
        self.destination_url = resolve_url(context, self.destination_url, self.destination_conn_id, self.task_id)
        source = make_engine(self.source_url, what=what)
        destination = make_engine(self.destination_url, what=what)
        log = context["log"]
        total = batches = 0
        try:
            with source.connect() as sconn, destination.begin() as dconn:
                result = self._run_source(sconn)
                keys = result.keys()
                columns = [str(c) for c in keys]
                batch_iter = self._batches(result, columns)
                first = next(batch_iter, [])
                table = self._prepare_table(dconn, columns, first, log)
                for batch in _chain_first(first, batch_iter):
                    if not batch:
                        continue
                    dconn.execute(table.insert(), batch)
                    total += len(batch)
                    batches += 1
                    log.info("copied batch %d (%d rows so far)", batches, total)
        except sa.exc.DBAPIError as exc:
            raise TaskExecutionError(
                f"task {self.task_id!r}: copying into {self.table!r} on {redact(self.destination_url)} failed: "
                f"{_db_message(exc)}"
            ) from exc
        finally:
            source.dispose()
            destination.dispose()
        log.info("copied %d row(s) into %s", total, self.table)
        return {"rows": total, "batches": batches, "table": self.table}

    def _run_source(self, sconn: Any) -> Any:
        import sqlalchemy as sa

        try:
            streaming = sconn.execution_options(stream_results=True, yield_per=self.batch_size)
            return streaming.execute(sa.text(self.sql), self.parameters or {})
        except sa.exc.DBAPIError as exc:
            raise TaskExecutionError(
                f"task {self.task_id!r}: the source query failed on {redact(self.source_url)}: {_db_message(exc)}"
            ) from exc

    def _batches(self, result: Any, columns: list[str]) -> Iterator[list[dict[str, Any]]]:
        while True:
            rows = result.fetchmany(self.batch_size)
            if not rows:
                return
            yield [dict(zip(columns, row, strict=True)) for row in rows]

    def _prepare_table(self, dconn: Any, columns: list[str], first: list[dict[str, Any]], log: Any) -> Any:
        import sqlalchemy as sa

        metadata = sa.MetaData()
        if sa.inspect(dconn).has_table(self.table, schema=self.schema):
            table = sa.Table(self.table, metadata, schema=self.schema, autoload_with=dconn)
            missing = [c for c in columns if c not in table.c]
            if missing:
                raise TaskExecutionError(
                    f"task {self.task_id!r}: table {self.table!r} has no column(s) {', '.join(map(repr, missing))} "
                    f"that the query returns; its columns are {', '.join(table.c.keys())}"
                )
            if self.mode == REPLACE:
                deleted = dconn.execute(table.delete()).rowcount
                log.info("replace: deleted %s existing row(s) of %s", deleted, self.table)
            return table
        if not self.create_table:
            raise TaskExecutionError(
                f"task {self.task_id!r}: table {self.table!r} does not exist on {redact(self.destination_url)}; "
                f"create it first or pass create_table=True"
            )
        cols = [
            sa.Column(name, self.column_types.get(name) or infer_type([row[name] for row in first])) for name in columns
        ]
        table = sa.Table(self.table, metadata, *cols, schema=self.schema)
        table.create(dconn)
        log.info("created table %s (%s)", self.table, ", ".join(f"{c.name} {c.type}" for c in cols))
        return table

    def extra_spec(self) -> dict[str, Any]:
        return {
            "source": redact(self.source_url) if self.source_url else f"connection {self.source_conn_id}",
            "destination": redact(self.destination_url)
            if self.destination_url
            else f"connection {self.destination_conn_id}",
            "table": self.table,
            "mode": self.mode,
        }


def _chain_first(first: list[dict[str, Any]], rest: Iterator[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
    yield first
    yield from rest
