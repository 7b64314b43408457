"""Database objects (``JdbcDatabase``, ``RdsDatabase``, ``RedshiftDatabase``, and a SQL data node
that carries its own ``connectionString``) as SQLAlchemy URLs.

Where the URL comes from, first match wins:

1. a Ductwork connection named like the database object's id (``DUCTWORK_CONN_<ID>``, or
   ``ductwork connections add <id> ...``);
2. for ``RdsDatabase`` and ``RedshiftDatabase``, a connection named like its ``rdsInstanceId`` or
   ``clusterId``, the names AWS knows them by;
3. a ``connectionString``: a SQLAlchemy URL as it is, or a JDBC URL translated
   (``jdbc:postgresql://h:5432/db``, ``jdbc:mysql://...``, ``jdbc:redshift://...``, which
   PostgreSQL stands in for); its JDBC driver properties become the Python driver's where
   there is one (``ssl``, ``tcpKeepAlive``, ``loginTimeout``, PostgreSQL's ``currentSchema``...)
   and are dropped otherwise; its ``user`` and ``password`` are the URL's credentials. The
   object's ``jdbcProperties`` are read the same way.

``username``, ``password`` (or ``*password``) and ``databaseName`` of the object fill in what the
URL lacks; a connection's own credentials are kept (a connection that names a user and no
password has no password), which is how a definition written for AWS (with AWS's credentials in
it) runs unchanged against a local database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from ductwork.declarative.datapipeline.model import PipelineObject
from ductwork.declarative.datapipeline.scope import Scope
from ductwork.errors import DuctworkError

_JDBC = re.compile(r"^jdbc:(?P<kind>[a-z0-9]+):(?P<rest>.*)$", re.IGNORECASE)
_JDBC_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "redshift": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
    "sqlite": "sqlite",
}


def from_jdbc(text: str) -> str:
    """A JDBC URL as a SQLAlchemy URL; other text is returned as it is."""
    match = _JDBC.match(text.strip())
    if match is None:
        return text.strip()
    kind = match.group("kind").lower()
    driver = _JDBC_DRIVERS.get(kind)
    if driver is None:
        raise DuctworkError(f"JDBC URLs of type {kind!r} are not supported; use postgresql, redshift or mysql")
    rest = match.group("rest")
    if driver == "sqlite":  # jdbc:sqlite:/path/to/file.db
        return f"sqlite:///{rest}"
    if not rest.startswith("//"):
        raise DuctworkError(f"{text!r} is not a JDBC URL like jdbc:{kind}://host:port/database")
    cut = min((i for i in (rest.find("?"), rest.find(";")) if i >= 0), default=len(rest))
    address, query = rest[:cut], rest[cut + 1 :].replace(";", "&")
    items = [unquote(item) for item in query.split("&") if item]
    user, password = _credentials(items)
    if (user or password) and "@" not in address[2:].split("/", 1)[0]:
        # JDBC's user and password properties: the URL's credentials, as the driver reads them.
        secret = f":{quote(password, safe='')}" if password else ""
        address = f"//{quote(user, safe='')}{secret}@{address[2:]}"
    properties = _driver_properties(driver, items)
    if not properties:
        return f"{driver}:{address}"
    return f"{driver}:{address}?" + "&".join(f"{key}={quote(value, safe='')}" for key, value in properties.items())


def _credentials(items: list[str]) -> tuple[str, str]:
    """The ``user`` and ``password`` JDBC properties among ``key=value`` items (empty if absent)."""
    found = {key.strip().lower(): value.strip() for key, _, value in (item.partition("=") for item in items)}
    return found.get("user", ""), found.get("password", "")


# JDBC driver properties and what the Python drivers call them; the others (tcpKeepAlive's
# siblings, useUnicode, serverTimezone...) tune the JDBC driver only and are dropped, as a
# Python driver refuses an option it does not know.
_POSTGRES_PROPERTIES: dict[str, tuple[str, Mapping[str, str] | None]] = {
    "sslmode": ("sslmode", None),
    "ssl": ("sslmode", {"true": "require", "false": "disable"}),
    "connecttimeout": ("connect_timeout", None),
    "logintimeout": ("connect_timeout", None),
    "applicationname": ("application_name", None),
    "tcpkeepalive": ("keepalives", {"true": "1", "false": "0"}),
    # PgJDBC's schema search path; libpq sets it with a server option (it decides which
    # schema's tables a script creates and reads).
    "currentschema": ("options", None),
}
_MYSQL_PROPERTIES: dict[str, tuple[str, Mapping[str, str] | None]] = {
    "characterencoding": ("charset", {"utf-8": "utf8mb4", "utf8": "utf8mb4"}),
    "connecttimeout": ("connect_timeout", None),
}


def _driver_properties(driver: str, items: list[str]) -> dict[str, str]:
    known = _POSTGRES_PROPERTIES if driver.startswith("postgresql") else _MYSQL_PROPERTIES
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        found = known.get(key.strip().lower())
        if found is None:
            continue
        name, values = found
        value = value.strip()
        if driver.startswith("mysql") and name == "connect_timeout" and value.isdigit():
            value = str(max(1, int(value) // 1000))  # Connector/J counts milliseconds, PyMySQL seconds
        if name == "options":
            value = "-csearch_path=" + value.replace("\\", "\\\\").replace(" ", "\\ ")
        out[name] = values.get(value.lower(), value) if values else value
    return out


def database_url(obj: PipelineObject, scope: Scope, secrets: Any) -> str:
    """The SQLAlchemy URL of a database object (see the module docstring)."""
    import sqlalchemy as sa

    names = [obj.id]
    for key in ("rdsInstanceId", "clusterId"):
        value = scope.text(obj, key)
        if value:
            names.append(value)
    url: str | None = None
    connection: str | None = None
    for name in names:
        found = secrets.find_connection(name) if secrets is not None else None
        if found is not None:
            url = found.sqlalchemy_url()
            connection = name
            break
    if url is None:
        text = scope.text(obj, "connectionString")
        if not text:
            wanted = " or ".join(f"DUCTWORK_CONN_{n.upper().replace('-', '_').replace('.', '_')}" for n in names)
            raise DuctworkError(
                f"database {obj.id!r} ({obj.type}): no connection named {', '.join(repr(n) for n in names)} "
                f"and no connectionString; define one ({wanted}=postgresql://user:password@host/db)"
            )
        url = from_jdbc(text)
    try:
        parsed = sa.make_url(url)
    except Exception:
        # The URL may carry a password (a JDBC URL's, a connection's): shown in the run and its log.
        shown = re.sub(r"(//[^/@:]*:)[^/@]*@", r"\1***@", url)
        raise DuctworkError(f"database {obj.id!r}: {shown!r} is not a database URL") from None
    if parsed.get_backend_name() == "sqlite":
        return url  # a file: no server credentials or database name to fill in
    fill: dict[str, Any] = {}
    items = scope.texts(obj, "jdbcProperties")
    # jdbcProperties' user and password stand in for the username and password fields.
    property_user, property_password = _credentials(items)
    username = scope.text(obj, "username") or property_user
    if not parsed.username and username:
        fill["username"] = username
    password = scope.text(obj, "*password") or scope.text(obj, "password") or property_password
    # A Ductwork connection that names its user has said its credentials: a passwordless one
    # (MariaDB's root on a workstation) got the definition's AWS password and was refused.
    own_user = parsed.username and connection is not None
    if not parsed.password and password and not own_user and (parsed.username or fill.get("username")):
        fill["password"] = password
    if not parsed.database and scope.text(obj, "databaseName"):
        fill["database"] = scope.text(obj, "databaseName")
    properties = _properties(parsed.get_backend_name(), items)
    if properties:
        fill["query"] = {**parsed.query, **properties}
    return str((parsed.set(**fill) if fill else parsed).render_as_string(hide_password=False))


def _properties(backend: str, items: list[str]) -> Mapping[str, str]:
    """``jdbcProperties`` as the Python driver's options: JDBC's names translated as in a
    connectionString (``ssl``, ``currentSchema``...), the driver's own names kept."""
    driver = "postgresql+psycopg" if backend == "postgresql" else "mysql+pymysql"
    out: dict[str, str] = dict(_driver_properties(driver, items))
    for item in items:
        key, sep, value = item.partition("=")
        if sep and key.strip() in ("sslmode", "connect_timeout", "application_name"):
            out[key.strip()] = value.strip()
    return out
