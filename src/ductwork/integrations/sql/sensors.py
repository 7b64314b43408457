"""``SqlSensor``: wait until a query's first cell is true."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.sensors import BaseSensorOperator
from ductwork.errors import DefinitionError, TaskExecutionError
from ductwork.integrations.sql._engine import json_value, make_engine, redact
from ductwork.integrations.sql.operators import _check_url, resolve_url


class SqlSensor(BaseSensorOperator):
    """Runs ``sql`` at every poke and is done when the first cell of the first row is truthy.

    Args:
        url: a SQLAlchemy URL; or ``conn_id``, a connection.
        sql: the query (templated); bind values with ``:name`` from ``parameters``.
        success: a callable given the first cell; done when it returns true (instead of the
            cell's own truth).
        failure: a callable given the first cell; when it returns true the task fails at once.
        fail_on_empty: fail when the query returns no row (by default: not done yet).
    """

    template_fields = ("sql", "parameters")
    ui_color = "#7c7287"

    def __init__(
        self,
        *,
        url: str = "",
        conn_id: str | None = None,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        success: Callable[[Any], Any] | None = None,
        failure: Callable[[Any], Any] | None = None,
        fail_on_empty: bool = False,
        engine_options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        owner = f"SqlSensor(task_id={kwargs.get('task_id')!r})"
        if not isinstance(sql, str) or not sql.strip():
            raise DefinitionError(f"{owner}: sql must be a query string")
        for name, value in (("success", success), ("failure", failure)):
            if value is not None and not callable(value):
                raise DefinitionError(f"{owner}: {name} must be callable, got {value!r}")
        _check_url(url, conn_id, owner)
        super().__init__(**kwargs)
        self.url = url
        self.conn_id = conn_id
        self.sql = sql
        self.parameters = parameters
        self.success = success
        self.failure = failure
        self.fail_on_empty = fail_on_empty
        self.engine_options = engine_options

    def poke(self, context: TaskContext) -> bool:
        import sqlalchemy as sa

        self.url = resolve_url(context, self.url, self.conn_id, self.task_id)
        engine = make_engine(self.url, what=f"task {self.task_id!r}", engine_options=self.engine_options)
        try:
            with engine.connect() as conn:
                row = conn.execute(sa.text(self.sql), self.parameters or {}).first()
        except sa.exc.DBAPIError as exc:
            orig = getattr(exc, "orig", exc)
            raise TaskExecutionError(
                f"task {self.task_id!r}: sensor query failed on {redact(self.url)}: {type(orig).__name__}: {orig}"
            ) from exc
        finally:
            engine.dispose()
        if row is None:
            if self.fail_on_empty:
                raise TaskExecutionError(f"task {self.task_id!r}: the sensor query returned no row")
            context["log"].info("no row yet")
            return False
        cell = row[0]
        context["log"].info("first cell: %r", cell)
        if self.failure is not None and self.failure(cell):
            raise TaskExecutionError(f"task {self.task_id!r}: failure condition met by {json_value(cell)!r}")
        if self.success is not None:
            return bool(self.success(cell))
        return bool(cell) and cell not in ("0", "false", "False")

    def extra_spec(self) -> dict[str, Any]:
        where = redact(self.url) if self.url else f"connection {self.conn_id}"
        return {**super().extra_spec(), "url": where, "sql": self.sql}
