"""``SqlTableTarget``: a table load is complete when a marker row says so (Luigi's pattern).

A load writes its rows and a row in the marker table (``table_updates``: ``update_id``,
``target_table``, ``inserted_at``) in one transaction, so the target exists exactly when the
data is there::

    target = SqlTableTarget(url, "daily_sales", update_id=f"daily_sales:{date}")
    with target.transaction() as conn:     # the marker is written when the block succeeds
        conn.execute(insert_rows)

On MySQL/MariaDB a ``CREATE TABLE`` commits the transaction around it, so ``transaction()``
creates the marker table beforehand; call ``create_marker_table()`` first when you use
``touch(connection)`` directly there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from ductwork.core.clock import Clock, SystemClock
from ductwork.errors import DefinitionError, TaskExecutionError
from ductwork.integrations.sql._engine import make_engine, redact

MARKER_TABLE = "table_updates"


class SqlTableTarget:
    """A table load identified by ``update_id`` (say ``"sales:2024-01-31"``)."""

    def __init__(
        self,
        url: str,
        table: str,
        update_id: str,
        *,
        marker_table: str = MARKER_TABLE,
        schema: str | None = None,
        engine_options: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
    ) -> None:
        for name, value in (("url", url), ("table", table), ("update_id", update_id)):
            if not isinstance(value, str) or not value:
                raise DefinitionError(f"SqlTableTarget: {name} must be a non-empty string, got {value!r}")
        if len(update_id) > 128 or len(table) > 128:
            raise DefinitionError(f"SqlTableTarget: table and update_id must be at most 128 characters: {update_id!r}")
        self.url = url
        self.table = table
        self.update_id = update_id
        self.marker_table = marker_table
        self.schema = schema
        self.engine_options = engine_options
        self.clock = clock or SystemClock()
        self._engine: Any = None

    @property
    def engine(self) -> Any:
        """The SQLAlchemy engine (created on first use)."""
        if self._engine is None:
            self._engine = make_engine(self.url, what=repr(self), engine_options=self.engine_options)
        return self._engine

    def _marker(self) -> Any:
        import sqlalchemy as sa

        return sa.Table(
            self.marker_table,
            sa.MetaData(),
            sa.Column("update_id", sa.String(128), primary_key=True),
            sa.Column("target_table", sa.String(128), primary_key=True),
            sa.Column("inserted_at", sa.DateTime(timezone=True), nullable=False),
            schema=self.schema,
        )

    def exists(self) -> bool:
        """Whether the marker row of this update is there."""
        import sqlalchemy as sa

        marker = self._marker()
        try:
            with self.engine.connect() as conn:
                if not sa.inspect(conn).has_table(self.marker_table, schema=self.schema):
                    return False
                query = sa.select(marker.c.update_id).where(
                    marker.c.update_id == self.update_id, marker.c.target_table == self.table
                )
                return conn.execute(query).first() is not None
        except sa.exc.DBAPIError as exc:
            raise TaskExecutionError(f"{self!r}: cannot check the marker on {redact(self.url)}: {exc.orig}") from exc

    def create_marker_table(self) -> None:
        """Create the marker table if it is missing (in its own transaction)."""
        with self.engine.begin() as conn:
            self._marker().create(conn, checkfirst=True)

    def touch(self, connection: Any) -> None:
        """Record the update through ``connection``, in the caller's transaction with the data."""
        import sqlalchemy as sa

        marker = self._marker()
        marker.create(connection, checkfirst=True)
        done = sa.select(marker.c.update_id).where(
            marker.c.update_id == self.update_id, marker.c.target_table == self.table
        )
        if connection.execute(done).first() is None:
            now = self.clock.now().astimezone(dt.UTC)
            if connection.dialect.name in ("mysql", "mariadb", "sqlite"):  # no time zones: store UTC
                now = now.replace(tzinfo=None)
            connection.execute(
                marker.insert().values(update_id=self.update_id, target_table=self.table, inserted_at=now)
            )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Any]:
        """A connection in a transaction that also writes the marker when the block succeeds."""
        self.create_marker_table()
        with self.engine.begin() as conn:
            yield conn
            self.touch(conn)

    def remove(self) -> None:
        """Forget the update (the data stays), so the task that loads it runs again."""
        import sqlalchemy as sa

        marker = self._marker()
        with self.engine.begin() as conn:
            if sa.inspect(conn).has_table(self.marker_table, schema=self.schema):
                conn.execute(
                    marker.delete().where(marker.c.update_id == self.update_id, marker.c.target_table == self.table)
                )

    def inserted_at(self) -> dt.datetime | None:
        """When the update was recorded, or None."""
        import sqlalchemy as sa

        marker = self._marker()
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(self.marker_table, schema=self.schema):
                return None
            query = sa.select(marker.c.inserted_at).where(
                marker.c.update_id == self.update_id, marker.c.target_table == self.table
            )
            value = conn.execute(query).scalar()
        return value if isinstance(value, dt.datetime) else None

    def __repr__(self) -> str:
        return f"SqlTableTarget({redact(self.url)!r}, {self.table!r}, update_id={self.update_id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SqlTableTarget) and (other.url, other.table, other.update_id, other.marker_table) == (
            self.url,
            self.table,
            self.update_id,
            self.marker_table,
        )

    def __hash__(self) -> int:
        return hash(("SqlTableTarget", self.url, self.table, self.update_id))
