"""``airflow.models.Connection`` as Airflow code reads it: ``extra`` is the JSON text,
``extra_dejson`` the object, and ``get_connection_from_secrets`` (``Connection.get`` in
``airflow.sdk``) looks a connection up where Ductwork keeps them (``DUCTWORK_CONN_*``, then the
metadata database, as the ``secrets_backends`` setting says)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ductwork.core import connections as core

from .variable import current_secrets


def airflow_conn_type(conn_type: str | None) -> str | None:
    """The type as Airflow names it: a ``postgresql://`` URI is of type ``postgres`` to Airflow
    (``Connection(uri=...)``, ``AIRFLOW_CONN_*``, ``airflow connections add --conn-uri``), and DAG
    code and hooks compare it with that (``if conn.conn_type == "postgres"``). Ductwork keeps the
    URI's own scheme, so such code took a connection added as ``postgresql://`` for another kind."""
    return "postgres" if conn_type == "postgresql" else conn_type


class Connection:
    """One connection with Airflow's attribute names; the password is never in ``repr``."""

    def __init__(
        self,
        conn_id: str | None = None,
        conn_type: str | None = None,
        description: str | None = None,
        host: str | None = None,
        login: str | None = None,
        password: str | None = None,
        schema: str | None = None,
        port: int | None = None,
        extra: str | Mapping[str, Any] | None = None,
        uri: str | None = None,
    ) -> None:
        if uri is not None:
            parsed = core.Connection.from_uri(conn_id or "", uri)
            conn_type, host, login, password = parsed.conn_type, parsed.host, parsed.login, parsed.password
            schema, port, extra = parsed.schema, parsed.port, dict(parsed.extra)
        self.conn_id = conn_id
        self.conn_type = airflow_conn_type(conn_type) if uri is not None else conn_type
        self.description = description
        self.host = host
        self.login = login
        self.password = password
        self.schema = schema
        self.port = port
        self.extra = json.dumps(dict(extra)) if isinstance(extra, Mapping) else extra

    @classmethod
    def from_ductwork(cls, found: core.Connection) -> Connection:
        return cls(
            conn_id=found.conn_id,
            conn_type=airflow_conn_type(found.conn_type),
            description=found.description,
            host=found.host,
            login=found.login,
            password=found.password,
            schema=found.schema,
            port=found.port,
            extra=dict(found.extra),
        )

    @classmethod
    def get_connection_from_secrets(cls, conn_id: str) -> Connection:
        """The connection, or Airflow's ``AirflowNotFoundException`` naming where it was looked for."""
        from ductwork.errors import NotFoundError

        from ..exceptions import AirflowNotFoundException

        try:
            return cls.from_ductwork(current_secrets().get_connection(conn_id))
        except NotFoundError as exc:
            raise AirflowNotFoundException(str(exc)) from None

    get = get_connection_from_secrets  # airflow.sdk.Connection.get

    @property
    def extra_dejson(self) -> dict[str, Any]:
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def get_password(self) -> str | None:
        return self.password

    def get_extra(self) -> str | None:
        return self.extra

    def _ductwork(self) -> core.Connection:
        # postgres:// is no SQLAlchemy URL: the URI keeps the scheme Ductwork's own tasks (and
        # Airflow code that changes postgres:// to postgresql://) connect with
        return core.Connection(
            conn_id=self.conn_id or "",
            conn_type="postgresql" if self.conn_type == "postgres" else self.conn_type or "",
            host=self.host,
            login=self.login,
            password=self.password,
            schema=self.schema,
            port=self.port,
            extra=self.extra_dejson,
            description=self.description or "",
        )

    def get_uri(self) -> str:
        return self._ductwork().get_uri()

    def __repr__(self) -> str:
        return f"<Connection {self.conn_id!r} type={self.conn_type!r} host={self.host!r}>"


class ConnectionAccessor:
    """``{{ conn.NAME }}`` in an Airflow DAG's templates: Airflow's ``Connection`` (``extra`` the
    JSON text, ``extra_dejson.sslmode``...), looked up through the try's own accessor (so an
    unknown name fails the render saying where it was looked for)."""

    def __init__(self, accessor: Any) -> None:
        self._accessor = accessor

    def __getattr__(self, name: str) -> Connection:
        if name.startswith("_"):
            raise AttributeError(name)
        return Connection.from_ductwork(self._accessor.get(name))

    def get(self, name: str, default_conn: Any = None) -> Any:
        """The connection, or ``default_conn`` when it is not defined (Airflow's method)."""
        from ductwork.errors import NotFoundError

        try:
            return getattr(self, name)
        except NotFoundError:
            return default_conn
