"""SQL work of pipeline objects: ``SqlActivity`` scripts, and rows in and out of SQL data nodes
(``SqlDataNode``, ``MySqlDataNode``, ``RedshiftDataNode``) for ``CopyActivity``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

from ductwork.core.context import TaskContext
from ductwork.declarative.datapipeline.databases import database_url
from ductwork.declarative.datapipeline.model import PipelineObject
from ductwork.declarative.datapipeline.scope import Scope
from ductwork.errors import TaskExecutionError
from ductwork.integrations.sql._engine import _closing_quote, _dollar_tag, make_engine, redact, split_statements


class ObjectTask(Protocol):
    """What the SQL helpers need of the task they work for: its id (for messages) and the
    objects a field of an object refers to."""

    task_id: str

    def referenced(self, name: str, obj: PipelineObject | None = None) -> list[PipelineObject]: ...


def jdbc_sql(statement: str, first: int = 0) -> tuple[str, int]:
    """``statement`` as SQLAlchemy ``text()`` reads it as JDBC ran it on AWS: each ``?`` outside
    quotes, comments and dollar quotes becomes ``:arg<n>`` (numbered from ``first``), ``??`` is a
    literal ``?`` (pgjdbc's escape), and every other colon is escaped. Without that a ``?``
    inside a literal took an argument, ``?::date`` reached the database as ``:arg0::date``, and
    ``'at 10 :30'`` asked for a bind parameter ``30``. Returns the text and the next number."""
    out: list[str] = []
    count = first
    i, n = 0, len(statement)
    while i < n:
        c = statement[i]
        if c in "'\"`":
            end = _closing_quote(statement, i, c)
        elif statement.startswith("--", i):
            end = statement.find("\n", i)
            end = n if end < 0 else end
        elif statement.startswith("/*", i):
            end = statement.find("*/", i + 2)
            end = n if end < 0 else end + 2
        elif c == "$" and (tag := _dollar_tag(statement, i)):
            end = statement.find(tag, i + len(tag))
            end = n if end < 0 else end + len(tag)
        elif statement.startswith("??", i):
            out.append("?")
            i += 2
            continue
        elif c == "?":
            out.append(f":arg{count}")
            count += 1
            i += 1
            continue
        else:
            end = i + 1
        out.append(statement[i:end].replace(":", "\\:"))
        i = end
    return "".join(out), count


def literal_sql(statement: str) -> str:
    """``statement`` for SQLAlchemy ``text()`` with no placeholders: its colons escaped, so that
    a ``:word`` in a literal or comment is not taken for a bind parameter."""
    return statement.replace(":", "\\:")


def _engine(op: ObjectTask, context: TaskContext, scope: Scope, database: PipelineObject) -> Any:
    url = database_url(database, scope, context.get("secrets"))
    context["log"].info("database %s: %s", database.id, redact(url))
    return make_engine(url, what=f"task {op.task_id!r}, database {database.id!r}")


def _bind(statement: str, args: Sequence[str], used: int) -> tuple[str, dict[str, Any], int]:
    """``?`` placeholders as named parameters, filled from ``args`` in order across the script;
    with no ``scriptArgument`` a ``?`` is left to the database (PostgreSQL's JSON operators)."""
    if not args:
        return literal_sql(statement), {}, used
    text, after = jdbc_sql(statement, used)
    if after > len(args):
        raise TaskExecutionError(f"the script has more '?' placeholders than scriptArgument values ({len(args)})")
    return text, {f"arg{i}": args[i] for i in range(used, after)}, after


def run_script(
    op: ObjectTask,
    context: TaskContext,
    scope: Scope,
    database: PipelineObject,
    script: str,
    args: Sequence[str],
) -> list[int]:
    import sqlalchemy as sa

    engine = _engine(op, context, scope, database)
    counts: list[int] = []
    used = 0
    try:
        with engine.begin() as conn:
            for statement in split_statements(script):
                text, values, used = _bind(statement, args, used)
                result = conn.execute(sa.text(text), values)
                counts.append(result.rowcount if result.rowcount is not None else -1)
            if args and used < len(args):
                # JDBC refuses a value for a placeholder that is not there ("column index out of
                # range"), so AWS failed; ignoring the extra values ran the script on a
                # miscounted argument list. Raised in the transaction: nothing is committed.
                raise TaskExecutionError(
                    f"the script has {used} '?' placeholder(s) but {len(args)} scriptArgument values: "
                    f"the last {len(args) - used} fill none"
                )
    except sa.exc.SQLAlchemyError as exc:
        raise TaskExecutionError(
            f"SQL failed on database {database.id!r}: {exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}"
        ) from None
    finally:
        engine.dispose()
    return counts


def _table(scope: Scope, node: PipelineObject) -> tuple[str, str | None]:
    name = scope.text(node, "tableName") or scope.text(node, "table") or ""
    schema = scope.text(node, "schemaName") or None
    return name, schema


def _find_schema(conn: Any, schema: str | None) -> str | None:
    """The schema's name as the database knows it: ``PUBLIC`` in a definition (AWS's Redshift
    samples write it so) is ``public`` in PostgreSQL, which folds unquoted names."""
    import sqlalchemy as sa

    if schema is None:
        return None
    known = sa.inspect(conn).get_schema_names()
    if schema in known or schema.lower() not in known:
        return schema
    return schema.lower()


def _find_table(conn: Any, name: str, schema: str | None) -> str | None:
    """The table's name as the database knows it. Redshift, like SQL itself, folds unquoted
    names, so ``StructuredLogs`` in a definition is ``structuredlogs`` in PostgreSQL."""
    import sqlalchemy as sa

    inspector = sa.inspect(conn)
    for candidate in dict.fromkeys((name, name.lower())):
        if inspector.has_table(candidate, schema=schema):
            return candidate
    return None


def node_database(op: ObjectTask, node: PipelineObject) -> PipelineObject:
    """The database object of a SQL data node: the one its ``database`` names, else the node
    itself, whose ``connectionString``, ``username`` and ``*password`` say where it is (AWS's
    MySqlDataNode form)."""
    named = op.referenced("database", node)
    return named[0] if named else node


def read_rows(
    op: ObjectTask, context: TaskContext, scope: Scope, node: PipelineObject
) -> tuple[list[list[Any]], list[str]]:
    """The rows of a SQL data node: its ``selectQuery``, or the whole table."""
    import sqlalchemy as sa

    engine = _engine(op, context, scope, node_database(op, node))
    try:
        with engine.connect() as conn:
            query = scope.text(node, "selectQuery")
            if query:
                result = conn.execute(sa.text(literal_sql(query)))
            else:
                name, schema = _table(scope, node)
                schema = _find_schema(conn, schema)
                found = _find_table(conn, name, schema)
                if found is None:
                    raise TaskExecutionError(f"table {name!r} of {node.id!r} does not exist")
                table = sa.Table(found, sa.MetaData(), schema=schema, autoload_with=conn)
                result = conn.execute(sa.select(table))
            columns = list(result.keys())
            return [list(row) for row in result], columns
    except sa.exc.SQLAlchemyError as exc:
        raise TaskExecutionError(
            f"reading {node.id!r} failed: {exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}"
        ) from None
    finally:
        engine.dispose()


def write_rows(
    op: ObjectTask,
    context: TaskContext,
    scope: Scope,
    node: PipelineObject,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    *,
    insert_mode: str = "APPEND",
) -> int:
    """Insert ``rows`` into a SQL data node's table, creating it with ``createTableSql`` when it
    does not exist; with its ``insertQuery`` (``?`` for each value) when it has one.

    ``insert_mode`` is ``RedshiftCopyActivity``'s: ``APPEND`` adds every row, ``TRUNCATE`` empties
    the table first, ``KEEP_EXISTING`` skips rows whose primary key is already there and
    ``OVERWRITE_EXISTING`` replaces them (the key: the node's ``primaryKeys``, else the table's).
    """
    import sqlalchemy as sa

    engine = _engine(op, context, scope, node_database(op, node))
    name, schema = _table(scope, node)
    written = 0
    try:
        with engine.begin() as conn:
            schema = _find_schema(conn, schema)
            found = _find_table(conn, name, schema)
            if found is None:
                create = scope.text(node, "createTableSql")
                if not create:
                    raise TaskExecutionError(
                        f"table {name!r} of {node.id!r} does not exist and the data node has no createTableSql"
                    )
                if node.type == "RedshiftDataNode" and conn.dialect.name != "redshift":
                    create = without_redshift_options(create)
                for statement in split_statements(create):
                    conn.execute(sa.text(literal_sql(statement)))
                context["log"].info("created table %s", name)
                found = _find_table(conn, name, schema)
                if found is None:
                    raise TaskExecutionError(
                        f"the createTableSql of {node.id!r} did not create its table {name!r}; "
                        "make the table name in the statement match tableName"
                    )
            insert = scope.text(node, "insertQuery")
            if rows and insert:
                params = [{f"arg{i}": v for i, v in enumerate(row)} for row in rows]
                sql_text, _ = jdbc_sql(insert)
                conn.execute(sa.text(sql_text), params)
                written = len(rows)
            elif rows or insert_mode == "TRUNCATE":
                written = _insert(conn, scope, node, found, schema, rows, columns, insert_mode)
    except sa.exc.SQLAlchemyError as exc:
        raise TaskExecutionError(
            f"writing to {node.id!r} failed: {exc.__class__.__name__}: {getattr(exc, 'orig', None) or exc}"
        ) from None
    finally:
        engine.dispose()
    context["log"].info("wrote %d of %d row(s) into %s (%s)", written, len(rows), name, insert_mode)
    return written


def _insert(
    conn: Any,
    scope: Scope,
    node: PipelineObject,
    name: str,
    schema: str | None,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    insert_mode: str,
) -> int:
    import sqlalchemy as sa

    table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
    names = list(columns) if columns else [c.name for c in table.columns]
    bad = next((i for i, row in enumerate(rows) if len(row) != len(names)), None)
    if bad is not None:
        # The row that does not fit, with its values: "rows have 2 values but table 't' takes
        # 2" was said of the first row when a later one had 3.
        row = rows[bad]
        shown = ", ".join(repr(v) for v in list(row)[:8]) + (", ..." if len(row) > 8 else "")
        raise TaskExecutionError(
            f"row {bad + 1} of the input has {len(row)} values ({shown}) but table {name!r} takes "
            f"{len(names)} ({', '.join(names)}); fix the data, or name the columns in the input's data format"
        )
    folded = {c.name.lower(): c for c in table.columns}
    found = [table.columns[n] if n in table.columns else folded.get(n.lower()) for n in names]
    missing = [n for n, c in zip(names, found, strict=True) if c is None]
    if missing:
        raise TaskExecutionError(f"table {name!r} has no column {', '.join(repr(m) for m in missing)}")
    cols = [c for c in found if c is not None]
    values = [{c.name: _coerce(v, c) for v, c in zip(row, cols, strict=True)} for row in rows]
    if insert_mode == "TRUNCATE":
        conn.execute(sa.delete(table))
    elif insert_mode in ("KEEP_EXISTING", "OVERWRITE_EXISTING"):
        keys = scope.texts(node, "primaryKeys") or [c.name for c in table.primary_key.columns]
        if not keys:
            raise TaskExecutionError(f"{insert_mode} needs a primary key: give {node.id!r} primaryKeys")
        key_cols = [table.columns[k] if k in table.columns else folded[k.lower()] for k in keys]
        existing = {_key(r) for r in conn.execute(sa.select(*key_cols))}
        incoming = [v for v in values if _key(v.get(c.name) for c in key_cols) in existing]
        if insert_mode == "KEEP_EXISTING":
            values = [v for v in values if _key(v.get(c.name) for c in key_cols) not in existing]
        else:
            for v in incoming:
                conn.execute(sa.delete(table).where(*(c == v.get(c.name) for c in key_cols)))
    if values:
        conn.execute(sa.insert(table), values)
    return len(values)


def _key(values: Any) -> tuple[Any, ...]:
    """A primary key for comparison: CHAR columns come back padded with blanks."""
    return tuple(v.rstrip() if isinstance(v, str) else v for v in values)


_REDSHIFT_OPTIONS = re.compile(
    r"\b(?:(?:COMPOUND|INTERLEAVED)\s+)?SORTKEY\b(?:\s*\([^)]*\))?"
    r"|\bDISTKEY\b(?:\s*\([^)]*\))?"
    r"|\bDISTSTYLE\s+\w+"
    r"|\bENCODE\s+\w+"
    r"|\bBACKUP\s+(?:YES|NO)\b",
    re.IGNORECASE,
)


def without_redshift_options(ddl: str) -> str:
    """Redshift's table options (DISTKEY, SORTKEY, DISTSTYLE, ENCODE, BACKUP) removed, so that
    the statement runs on PostgreSQL standing in for Redshift."""
    return re.sub(r"[ \t]+([,)])", r"\1", _REDSHIFT_OPTIONS.sub("", ddl))


def _coerce(value: Any, column: Any) -> Any:
    """Text read from a file, as the column's type wants it (an empty field is NULL)."""
    import datetime as dt
    import decimal

    if not isinstance(value, str):
        return value
    try:
        wanted = column.type.python_type
    except NotImplementedError:
        return value
    if wanted is str:
        return value
    if value == "":
        return None
    try:
        if wanted is bool:
            return value.strip().lower() in ("1", "true", "t", "yes", "y")
        if wanted in (int, float, decimal.Decimal):
            return wanted(value.strip())
        if wanted is dt.datetime:
            return dt.datetime.fromisoformat(value.strip())
        if wanted is dt.date:
            return dt.date.fromisoformat(value.strip())
    except (ValueError, decimal.InvalidOperation):
        raise TaskExecutionError(f"column {column.name!r} wants {wanted.__name__}, got {value!r}") from None
    return value


def table_exists(op: ObjectTask, context: TaskContext, scope: Scope, node: PipelineObject) -> bool:

    engine = _engine(op, context, scope, node_database(op, node))
    name, schema = _table(scope, node)
    try:
        with engine.connect() as conn:
            return _find_table(conn, name, _find_schema(conn, schema)) is not None
    finally:
        engine.dispose()
