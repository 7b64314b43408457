"""Connections and variables as plain values, the secrets-backend port, and the lookup chain.

A ``Connection`` is what a task needs to reach a system: type, host, port, login, password,
schema (database or path) and ``extra`` settings. It round-trips through a URI
(``postgresql://user:pass@host:5432/db?sslmode=require``), the form used in
``DUCTWORK_CONN_<NAME>`` environment variables and on the command line.

Where connections and variables come from is a ``SecretsBackend``: anything with
``get_connection(name)`` and ``get_variable(name)`` returning the value or ``None``.
``Secrets`` asks its backends in order and the first answer wins; the built-in order is the
environment, then the metadata database (``ductwork.secret_backends`` builds it from
settings; other backends are plugins). Everything here is pure: the environment backend is
given its mapping, the database backend lives in ``ductwork.store``.

Every value a lookup returns that is secret (a password, the extra, a variable whose name
looks secret) is registered with the masker (``ductwork.core.masking``) before it is handed
out, so it never shows in a try's log or rendered fields.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ductwork.core.masking import MASKER, is_secret_name
from ductwork.errors import DefinitionError, NotFoundError, did_you_mean

CONN_ENV_PREFIX = "DUCTWORK_CONN_"
VAR_ENV_PREFIX = "DUCTWORK_VAR_"
AIRFLOW_CONN_ENV_PREFIX = "AIRFLOW_CONN_"
AIRFLOW_VAR_ENV_PREFIX = "AIRFLOW_VAR_"

_VARIABLES_READ: ContextVar[dict[str, str | None] | None] = ContextVar("ductwork_variables_read", default=None)


@contextmanager
def variables_read() -> Iterator[dict[str, str | None]]:
    """The variables looked up inside the block, by name, with the value found (None: not
    found): a flow file that builds its tasks from a variable when it is imported is parsed
    again when that variable changes, as it would be in Airflow (which parses every file again
    every 30 seconds), and a warm worker imports it again before a try."""
    names: dict[str, str | None] = {}
    token = _VARIABLES_READ.set(names)
    try:
        yield names
    finally:
        _VARIABLES_READ.reset(token)


_IMPORT_SECRETS: ContextVar[Secrets | None] = ContextVar("ductwork_import_secrets", default=None)


@contextmanager
def lending_secrets(secrets: Secrets | None) -> Iterator[None]:
    """Connections and variables for the code a worker runs outside any try: a flow file's
    top-level ``Variable.get`` when the worker imports it. A worker keeps Ductwork's own
    settings (the database URL) out of its environment (``engine.task_env``), so that code,
    looking them up afresh, read another database (or none) than the scheduler's parse did."""
    token = _IMPORT_SECRETS.set(secrets)
    try:
        yield
    finally:
        _IMPORT_SECRETS.reset(token)


def lent_secrets() -> Secrets | None:
    """The secrets lent by ``lending_secrets`` to the code running now, if any."""
    return _IMPORT_SECRETS.get()


"""Airflow's names for the same, read after Ductwork's so that an existing deployment's
environment keeps working (Airflow upper-cases the name and changes nothing else)."""

_SQLALCHEMY_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "sqlite": "sqlite",
}


@dataclass(frozen=True)
class Connection:
    """How to reach one system. ``repr`` never shows the password."""

    conn_id: str
    conn_type: str = ""
    host: str | None = None
    login: str | None = None
    password: str | None = field(default=None, repr=False)
    schema: str | None = None
    port: int | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)
    description: str = ""

    # --- URIs -----------------------------------------------------------------------------
    @classmethod
    def from_uri(cls, conn_id: str, uri: str) -> Connection:
        """Parse ``type://login:password@host:port/schema?key=value``; query values become
        ``extra`` (a JSON object may also be given whole as ``?__extra__={...}``)."""
        if "://" not in uri:
            raise DefinitionError(
                f"connection {conn_id!r}: {_hide(uri)!r} is not a URI; expected "
                "type://login:password@host:port/schema?key=value"
            )
        try:
            parts = urllib.parse.urlsplit(uri)
        except ValueError:  # an unclosed '[' of an IPv6 address, a bad character in the host
            # (the parser's own message quotes the netloc, password included: not repeated)
            raise DefinitionError(
                f"connection {conn_id!r}: {_hide(uri)!r} is not a URI (its host part cannot be read); expected "
                "type://login:password@host:port/schema?key=value"
            ) from None
        try:
            port = parts.port
        except ValueError:
            raise DefinitionError(
                f"connection {conn_id!r}: the port in {_hide(uri)!r} is not a number from 0 to 65535"
            ) from None
        extra: dict[str, Any] = {}
        for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
            if key == "__extra__":
                try:
                    extra.update(json.loads(value))
                except ValueError:
                    raise DefinitionError(f"connection {conn_id!r}: __extra__ is not a JSON object") from None
            else:
                extra[key] = value
        path = parts.path[1:] if parts.path.startswith("/") else parts.path
        return cls(
            conn_id=conn_id,
            conn_type=parts.scheme.replace("-", "_"),
            host=_unquote(parts.hostname),
            login=_unquote(parts.username),
            password=_unquote(parts.password),
            schema=urllib.parse.unquote(path) or None,
            port=port,
            extra=extra,
        )

    def get_uri(self) -> str:
        """The connection as a URI (with its password: for storage, never for display)."""
        scheme = self.conn_type.replace("_", "-") or "generic"
        extra = dict(self.extra)
        if not extra:
            query = ""
        elif all(isinstance(v, str) for v in extra.values()):
            query = urllib.parse.urlencode(extra)
        else:
            query = urllib.parse.urlencode({"__extra__": json.dumps(extra)})
        return self._uri(scheme, query)

    def _uri(self, scheme: str, query: str) -> str:
        netloc = ""
        if self.login is not None or self.password is not None:
            netloc = urllib.parse.quote(self.login or "", safe="")
            if self.password is not None:
                netloc += ":" + urllib.parse.quote(self.password, safe="")
            netloc += "@"
        netloc += urllib.parse.quote(self.host or "", safe="")
        if self.port is not None:
            netloc += f":{self.port}"
        uri = f"{scheme}://{netloc}"
        if self.schema:
            uri += "/" + urllib.parse.quote(self.schema, safe="/")
        return uri + (f"?{query}" if query else "")

    # --- what operators need ------------------------------------------------------------------
    def sqlalchemy_url(self) -> str:
        """A SQLAlchemy URL: the driver from ``extra["driver"]`` or the type (``postgres`` means
        psycopg 3, ``mysql`` and ``mariadb`` PyMySQL); for ``sqlite`` the schema is the path."""
        driver = str(self.extra.get("driver") or _SQLALCHEMY_DRIVERS.get(self.conn_type, self.conn_type))
        if not driver:
            raise DefinitionError(f"connection {self.conn_id!r} has no type, so it is not a database URL")
        if driver.startswith("sqlite"):
            return f"{driver}:///{self.schema or self.host or ':memory:'}"
        options = {k: v for k, v in self.extra.items() if k != "driver" and isinstance(v, str)}
        return self._uri(driver, urllib.parse.urlencode(options))

    def base_url(self) -> str:
        """An HTTP base URL: ``https`` unless the type or ``extra["scheme"]`` says ``http``."""
        scheme = str(self.extra.get("scheme") or (self.conn_type if self.conn_type in ("http", "https") else "https"))
        host = self.host or "localhost"
        port = f":{self.port}" if self.port else ""
        path = f"/{self.schema.strip('/')}" if self.schema else ""
        return f"{scheme}://{host}{port}{path}"

    def describe(self) -> dict[str, Any]:
        """The connection for display: the password and secret-looking extras replaced by ``***``."""
        return {
            "conn_id": self.conn_id,
            "conn_type": self.conn_type,
            "host": self.host,
            "port": self.port,
            "schema": self.schema,
            "login": self.login,
            "password": "***" if self.password else None,
            "extra": _hide_secret_values(self.extra),
            "description": self.description,
        }


def _unquote(value: str | None) -> str | None:
    return urllib.parse.unquote(value) if value is not None else None


def _hide(uri: str) -> str:
    """A URI for an error message: everything between ``://`` and ``@`` hidden."""
    if "@" in uri and "://" in uri:
        scheme, rest = uri.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return uri if len(uri) < 40 else uri[:20] + "..."


def register_secrets(connection: Connection) -> Connection:
    """Register a connection's password and secret-looking extras with the masker."""
    if connection.password:
        MASKER.add(connection.password)
    for value in _secret_values(connection.extra):
        MASKER.add(value)
    return connection


def _secret_values(extra: Any) -> Iterator[Any]:
    """The values of secret-looking keys in ``extra``, however deep (``{"headers":
    {"Authorization": "Bearer ..."}}``)."""
    if isinstance(extra, Mapping):
        for key, value in extra.items():
            if isinstance(key, str) and is_secret_name(key):
                yield value
            else:
                yield from _secret_values(value)
    elif isinstance(extra, list | tuple):
        for item in extra:
            yield from _secret_values(item)


def _hide_secret_values(extra: Any) -> Any:
    """``extra`` for display: the values of secret-looking keys, however deep, as ``***``."""
    if isinstance(extra, Mapping):
        return {
            k: "***" if isinstance(k, str) and is_secret_name(k) else _hide_secret_values(v) for k, v in extra.items()
        }
    if isinstance(extra, list | tuple):
        return [_hide_secret_values(item) for item in extra]
    return extra


def register_variable(name: str, value: str) -> str:
    if is_secret_name(name):
        MASKER.add(value)
    return value


# --- backends -------------------------------------------------------------------------------------
@runtime_checkable
class SecretsBackend(Protocol):
    """Where connections and variables come from. Return ``None`` for a name you do not have,
    so the next backend is asked; raise only when you cannot answer at all."""

    def get_connection(self, name: str) -> Connection | None: ...

    def get_variable(self, name: str) -> str | None: ...


def env_name(prefix: str, name: str) -> str:
    """``DUCTWORK_CONN_MY_DB`` for ``my_db``, ``my-db`` and ``My.DB`` alike."""
    return prefix + "".join(c if c.isalnum() else "_" for c in name).upper()


class EnvironmentSecrets:
    """``DUCTWORK_CONN_<NAME>`` (a URI, or a JSON object of the connection's fields) and
    ``DUCTWORK_VAR_<NAME>`` from the given environment mapping; when unset, Airflow's
    ``AIRFLOW_CONN_<NAME>`` and ``AIRFLOW_VAR_<NAME>``."""

    label = "environment"

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def get_connection(self, name: str) -> Connection | None:
        for variable in self._names("connection", name):
            raw = self.environ.get(variable)
            if raw is not None:
                return connection_from_env(name, variable, raw.strip())
        return None

    def get_variable(self, name: str) -> str | None:
        for variable in self._names("variable", name):
            if variable in self.environ:
                return self.environ[variable]
        return None

    def where(self, kind: str, name: str) -> str:
        return " or ".join(self._names(kind, name))

    @staticmethod
    def _names(kind: str, name: str) -> tuple[str, str]:
        if kind == "connection":
            return env_name(CONN_ENV_PREFIX, name), AIRFLOW_CONN_ENV_PREFIX + name.upper()
        return env_name(VAR_ENV_PREFIX, name), AIRFLOW_VAR_ENV_PREFIX + name.upper()


def connection_from_env(name: str, variable: str, raw: str) -> Connection:
    """A connection from an environment variable: a URI or a JSON object of its fields (as
    Airflow writes it, ``extra`` may be a JSON text)."""
    if not raw.startswith("{"):
        return Connection.from_uri(name, raw)
    try:
        fields = json.loads(raw)
        if isinstance(fields.get("extra"), str):
            fields["extra"] = json.loads(fields["extra"] or "{}")
    except ValueError:
        raise DefinitionError(f"{variable} is not valid JSON") from None
    fields.pop("conn_id", None)
    return Connection(conn_id=name, **_json_fields(variable, fields))


_JSON_FIELDS = ("conn_type", "host", "login", "password", "schema", "port", "extra", "description")
"""The fields of Airflow's JSON form of a connection (``conn_id`` is the variable's name)."""


def _json_fields(variable: str, fields: dict[str, Any]) -> dict[str, Any]:
    """``fields`` checked as Airflow's ``Connection.from_json`` checks them: an unknown field
    ended the command or the task with ``TypeError: Connection.__init__() got an unexpected
    keyword argument`` and a traceback, and a port written as text (``"5432"``, or ``"abc"``)
    was handed to the task as text."""
    unknown = [key for key in fields if key not in _JSON_FIELDS]
    if unknown:
        raise DefinitionError(
            f"{variable}: unknown field {unknown[0]!r}.{did_you_mean(unknown[0], _JSON_FIELDS)} "
            f"Fields: {', '.join(_JSON_FIELDS)}"
        )
    port = fields.get("port")
    if isinstance(port, str) and port.strip():
        try:
            fields["port"] = int(port)
        except ValueError:
            raise DefinitionError(f"{variable}: port {port!r} is not a number from 0 to 65535") from None
    elif port == "":
        fields["port"] = None
    if fields.get("port") is not None and (
        isinstance(fields["port"], bool) or not isinstance(fields["port"], int) or not 0 <= fields["port"] <= 65535
    ):
        raise DefinitionError(f"{variable}: port {fields['port']!r} is not a number from 0 to 65535")
    if not isinstance(fields.get("extra", {}), dict):
        raise DefinitionError(f'{variable}: extra is not a JSON object (such as {{"timeout": 5}})')
    return fields


class MemorySecrets:
    """Connections and variables held in dictionaries: for tests and for code that builds them."""

    label = "memory"

    def __init__(
        self, connections: Sequence[Connection] | None = None, variables: Mapping[str, str] | None = None
    ) -> None:
        self.connections = {c.conn_id: c for c in connections or ()}
        self.variables = dict(variables or {})

    def get_connection(self, name: str) -> Connection | None:
        return self.connections.get(name)

    def get_variable(self, name: str) -> str | None:
        return self.variables.get(name)


class Secrets:
    """Backends asked in order; what is found is registered with the masker and returned."""

    def __init__(self, backends: Sequence[SecretsBackend]) -> None:
        self.backends = list(backends)

    def get_connection(self, name: str) -> Connection:
        """The connection, or ``NotFoundError`` saying where it was looked for."""
        for backend in self.backends:
            found = backend.get_connection(name)
            if found is not None:
                return register_secrets(found)
        raise NotFoundError(f"connection {name!r} is not defined; looked in {self._where('connection', name)}")

    def get_variable(self, name: str, default: Any = NotFoundError) -> Any:
        reading = _VARIABLES_READ.get()
        if reading is not None:
            reading.setdefault(name, None)
        for backend in self.backends:
            found = backend.get_variable(name)
            if found is not None:
                if reading is not None:
                    reading[name] = found
                return register_variable(name, found)
        if default is not NotFoundError:
            return default
        raise NotFoundError(f"variable {name!r} is not defined; looked in {self._where('variable', name)}")

    def find_connection(self, name: str) -> Connection | None:
        try:
            return self.get_connection(name)
        except NotFoundError:
            return None

    def _where(self, kind: str, name: str) -> str:
        places = []
        for backend in self.backends:
            where = getattr(backend, "where", None)
            label = getattr(backend, "label", type(backend).__name__)
            places.append(f"{label} ({where(kind, name)})" if callable(where) else str(label))
        return ", ".join(places) or "no backend (none is configured)"


# --- what templates see ---------------------------------------------------------------------------
class ConnectionAccessor:
    """``{{ conn.NAME.host }}`` in templates."""

    def __init__(self, secrets: Secrets) -> None:
        self._secrets = secrets

    def __getattr__(self, name: str) -> Connection:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._secrets.get_connection(name)

    def get(self, name: str) -> Connection:
        return self._secrets.get_connection(name)


class VariableAccessor:
    """``{{ var.value.NAME }}``, ``{{ var.json.NAME }}`` and ``var.value.get('NAME', default)``."""

    def __init__(self, secrets: Secrets) -> None:
        self.value = _Variables(secrets, as_json=False)
        self.json = _Variables(secrets, as_json=True)


class _Variables:
    def __init__(self, secrets: Secrets, *, as_json: bool) -> None:
        self._secrets = secrets
        self._json = as_json

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._decode(name, self._secrets.get_variable(name))

    def get(self, name: str, default: Any = None) -> Any:
        value = self._secrets.get_variable(name, default=_ABSENT)
        return default if value is _ABSENT else self._decode(name, value)

    def _decode(self, name: str, value: str) -> Any:
        if not self._json:
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise DefinitionError(f"variable {name!r} is not valid JSON ({exc}); use var.value.{name}") from None


_ABSENT = object()
