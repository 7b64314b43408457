"""Engines and transactions: the only place that knows how each backend must be connected.

SQLite is the embedded default, so it gets the settings that make it a good multi-process
store: WAL (readers never block the writer), ``synchronous=NORMAL`` (durable at checkpoints,
much faster than FULL), a 30 s busy timeout, and foreign keys (off by default in SQLite).
Python's sqlite3 module opens transactions lazily and cannot take the write lock up front, so
a read that later writes can fail at once with "database is locked" instead of waiting; we
issue ``BEGIN`` ourselves, and ``BEGIN IMMEDIATE`` for write transactions, as SQLAlchemy's
documentation recommends.

PostgreSQL and MariaDB get pre-ping (a server restart costs one reconnect, not a failed
scheduler step) and pool recycling. MariaDB uses READ COMMITTED, like PostgreSQL, so that the
two behave the same under concurrent schedulers and InnoDB's gap locks do not turn bulk
inserts into deadlocks.

The caller owns the transaction: ``transaction(engine)`` opens one, repositories run inside it
and never commit.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DisconnectionError, NoSuchModuleError, OperationalError

from ductwork.store.errors import DatabaseUnreachableError, DriverMissingError

SQLITE_BUSY_TIMEOUT_S = 30
_WRITE = "ductwork_write"

_DEFAULT_DRIVERS = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def parse_url(url: str | URL) -> URL:
    """``url`` as a SQLAlchemy URL, with the drivers Ductwork ships filled in when none is named
    (``postgresql://`` means psycopg 3, ``mysql://`` and ``mariadb://`` mean PyMySQL)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DriverMissingError(f"cannot parse database URL {str(url)!r}: {exc}") from None
    if parsed.drivername in _DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=_DEFAULT_DRIVERS[parsed.drivername])
    return parsed


_AUTOCOMMIT: weakref.WeakSet[Engine] = weakref.WeakSet()
"""Engines made with ``autocommit=True``."""


def mask_url(url: str | URL) -> str:
    """The URL with its password replaced by ``***``, for messages and logs."""
    from ductwork.settings import redact_url

    try:
        return redact_url(make_url(url).render_as_string(hide_password=True))
    except ArgumentError:
        return "<unparseable URL>"


def create_engine(
    url: str | URL,
    *,
    echo: bool = False,
    pre_ping: bool = True,
    name: str | None = None,
    idle_in_transaction: float | None = None,
    autocommit: bool = False,
) -> Engine:
    """An engine configured for the backend named by ``url``.

    ``autocommit=True`` (a server database): every statement commits by itself, for
    ``single_statement`` writes only; its connections stay in that mode, so a write costs no
    switching of the connection in and out of it (SQLite ignores it).

    A pooled connection that sat unused for ``PING_AFTER_IDLE`` seconds is checked with one
    round trip before it is handed out (a server restarted or a firewall that dropped it meanwhile:
    a fresh connection replaces it, unseen by the caller). ``pre_ping=False`` drops even that, for
    callers that retry a transaction which fails on a dead connection anyway (a remote worker
    recording a try).

    On a database server, ``name`` labels the sessions (PostgreSQL's ``application_name``, what
    ``pg_stat_activity`` shows; MariaDB's ``program_name`` attribute), and ``idle_in_transaction``
    has the server end a session that sits in an open transaction that many seconds without a
    statement: a process frozen mid-transaction (SIGSTOP, a paused VM) then stops holding its row
    locks, which would otherwise block every other process that needs those rows.

    Raises ``DriverMissingError`` (naming the extra to install) when the driver is missing.
    Nothing connects until the engine is used.
    """
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(parsed, echo)
        engine = _server_engine(parsed, backend, echo, pre_ping, name, idle_in_transaction, autocommit)
        if autocommit:
            _AUTOCOMMIT.add(engine)
        return engine
    except (ModuleNotFoundError, NoSuchModuleError) as exc:
        if backend not in _EXTRAS and backend != "sqlite":
            # redis://, postgressql://: no driver to install would make it a metadata database
            from ductwork.errors import did_you_mean

            known = ["sqlite", "postgresql", "mysql", "mariadb"]
            raise DriverMissingError(
                f"database URL {mask_url(parsed)}: {backend!r} cannot hold Ductwork's metadata."
                f"{did_you_mean(backend, known)} "
                "The metadata database is SQLite (sqlite:///PATH), PostgreSQL (postgresql://...) or MariaDB/MySQL "
                "(mysql://...)"
            ) from None
        hint = _driver_hint(parsed, backend)
        raise DriverMissingError(
            f"database URL {mask_url(parsed)} needs the driver {parsed.drivername!r}, which is not available "
            f"({exc}){hint}"
        ) from None


def _driver_hint(url: URL, backend: str) -> str:
    extra = _EXTRAS.get(backend)
    if extra is None:
        return ""
    shipped = _DEFAULT_DRIVERS[backend]
    hint = f"; install Ductwork's driver with: pip install 'ductwork[{extra}]'"
    if url.drivername != shipped:
        hint += f" and use a {shipped}:// URL"
    return hint


def _sqlite_engine(url: URL, echo: bool) -> Engine:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see module docstring)
    cursor = dbapi_connection.cursor()
    try:
        _wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _wal(cursor: Any) -> None:
    """Switch the file to WAL mode once (the mode is stored in the file). Switching needs the
    file to itself and does not wait on the busy timeout, so a process that opens a brand-new
    database while another one is creating its tables retries for a while."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_on_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _server_engine(
    url: URL,
    backend: str,
    echo: bool,
    pre_ping: bool = True,
    name: str | None = None,
    idle_in_transaction: float | None = None,
    autocommit: bool = False,
) -> Engine:
    options: dict[str, Any] = {
        "echo": echo,
        "pool_size": 5,
        "max_overflow": 10,
        "pool_recycle": 1800,
    }
    connect_args: dict[str, Any] = {"connect_timeout": 10}
    if backend in ("mysql", "mariadb"):
        if "charset" not in url.query:
            url = url.update_query_dict({"charset": "utf8mb4"})
        options["isolation_level"] = "READ COMMITTED"
        if name:
            connect_args["program_name"] = name
    elif backend == "postgresql":
        if name:
            connect_args["application_name"] = name
        if idle_in_transaction:
            millis = max(1000, round(idle_in_transaction * 1000))
            given = url.query.get("options")  # the URL's own options (a search_path, say) stay
            mine = f"-c idle_in_transaction_session_timeout={millis}"
            connect_args["options"] = f"{given} {mine}" if isinstance(given, str) and given else mine
    if autocommit:
        options["isolation_level"] = "AUTOCOMMIT"
    options["connect_args"] = connect_args
    engine = sa.create_engine(url, **options)
    if pre_ping:
        _ping_when_idle(engine)
    if idle_in_transaction and backend in ("mysql", "mariadb"):
        seconds = max(1, round(idle_in_transaction))
        event.listen(engine, "connect", lambda dbapi, _record: _mariadb_idle_timeout(dbapi, seconds))
    return engine


PING_AFTER_IDLE = 1.0
"""Seconds a pooled connection may sit unused before it is checked on its next checkout.

SQLAlchemy's ``pool_pre_ping`` checks every checkout: a round trip per transaction, 13% of a busy
scheduler's time on PostgreSQL. A connection used a moment ago is alive unless the server went
away in that moment, and then the statement fails as it would with ``pool_pre_ping`` had the
server gone just after the ping: the callers handle that already (the scheduler waits for the
database, a remote worker retries its write, a web request fails once)."""


def _ping_when_idle(engine: Engine) -> None:
    dialect = engine.dialect

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        record.info["used_at"] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        used_at = record.info.get("used_at")
        if used_at is None or time.monotonic() - used_at < PING_AFTER_IDLE:
            return  # connected just now, or used a moment ago
        try:
            alive = dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection was dead: {exc}") from exc
        if not alive:
            raise DisconnectionError("a pooled connection was dead")

    # The pool answers DisconnectionError by replacing the connection (up to three times).
    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)


def _mariadb_idle_timeout(dbapi_connection: Any, seconds: int) -> None:
    """MariaDB's ``idle_transaction_timeout`` (MySQL has none; a ``mysql://`` URL may name either)."""
    if "mariadb" not in str(dbapi_connection.get_server_info()).lower():
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"SET SESSION idle_transaction_timeout = {int(seconds)}")
    finally:
        cursor.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: commits when the block ends, rolls back if it raises.

    On SQLite it takes the write lock at the start (``BEGIN IMMEDIATE``), so concurrent writers
    queue on the busy timeout instead of failing half-way.
    """
    with _connect(engine) as conn:
        conn.execution_options(**{_WRITE: True})
        with conn.begin():
            yield conn


@contextmanager
def single_statement(engine: Engine) -> Iterator[Connection]:
    """A connection for a write of one statement, with no transaction around it (autocommit):
    the statement is atomic by itself, and on a server it is one round trip where a
    transaction would add a ``BEGIN`` and a ``COMMIT`` of their own (a remote worker's try).
    Anything more than one statement belongs in ``transaction``. On SQLite (no round trips to
    save; its engine begins its own transactions) it is a transaction. An engine made with
    ``create_engine(..., autocommit=True)`` is used as it is; another one's connection is put
    in autocommit for the block (and back after it)."""
    if engine.dialect.name == "sqlite":
        with transaction(engine) as conn:
            yield conn
        return
    with _connect(engine) as conn:
        yield conn if engine in _AUTOCOMMIT else conn.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """One read-only unit of work: a consistent snapshot, rolled back at the end."""
    with _connect(engine) as conn, conn.begin() as tx:
        yield conn
        tx.rollback()


@contextmanager
def _connect(engine: Engine) -> Iterator[Connection]:
    try:
        conn = engine.connect()
    except OperationalError as exc:
        raise unreachable(engine.url, exc) from None
    with conn:
        yield conn


def unreachable(url: URL, exc: BaseException) -> DatabaseUnreachableError:
    """The error to raise when connecting to ``url`` failed with ``exc``."""
    orig = getattr(exc, "orig", None) or exc
    first_line = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    if url.get_backend_name() == "sqlite":
        where = f"SQLite database {url.database!r}"
        check = "Check that its folder exists, is writable and has free space"
    elif (answered := _server_answered(url, orig)) is not None:
        return DatabaseUnreachableError(f"the {url.get_backend_name()} server ({mask_url(url)}) {answered}")
    else:
        where = f"{url.get_backend_name()} server at {url.host or 'localhost'}:{url.port or _default_port(url)}"
        check = "Check that the server is running"
    return DatabaseUnreachableError(
        f"cannot connect to the {where} ({mask_url(url)}): {first_line}. "
        f"{check} and that DUCTWORK_DATABASE_URL is right."
    )


def _server_answered(url: URL, orig: BaseException) -> str | None:
    """What to say when the server answered but refused the database or the user: "check that
    the server is running" sent people looking at a server that was up."""
    text = str(orig)
    code = getattr(orig, "args", (None,))[0] if getattr(orig, "args", None) else None
    database = url.database or ""
    host = url.host or "localhost"
    if ("does not exist" in text and "database" in text) or code == 1049:
        how = (
            f"createdb -h {host} -U {url.username or 'postgres'} {database}"
            if url.get_backend_name() == "postgresql"
            else f"CREATE DATABASE `{database}`"
        )
        return (
            f"answered, but has no database {database!r}: create it ({how}) or name another in DUCTWORK_DATABASE_URL."
        )
    if ("role" in text and "does not exist" in text) or "password authentication failed" in text or code == 1045:
        return (
            f"answered, but refused the user {url.username!r}: {text.strip().splitlines()[0]}. Check the user and "
            "password in DUCTWORK_DATABASE_URL."
        )
    return None


def _default_port(url: URL) -> int | str:
    return {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(url.get_backend_name(), "?")


_P = ParamSpec("_P")
_R = TypeVar("_R")
_DEADLOCK_CODES = {1213, 1205}  # MySQL/MariaDB: deadlock found; lock wait timeout
_DEADLOCK_STATES = {"40P01", "40001"}  # PostgreSQL: deadlock detected; serialization failure


def deadlocked(exc: BaseException) -> bool:
    """Whether the server chose this transaction as a deadlock's victim (or it waited too long
    for a lock): nothing was written, and doing it again is the server's own advice."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return False
    code = getattr(orig, "args", (None,))[0] if isinstance(orig, Exception) else None
    return code in _DEADLOCK_CODES or getattr(orig, "sqlstate", None) in _DEADLOCK_STATES


def retry_deadlocks(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` again (up to three times in all, after 50 then 100 ms) when its transaction was
    a deadlock's victim: MariaDB's gap locks make a user's change and a run being created or
    driven at the same moment collide now and then. ``fn`` must be one transaction, or several
    that can each be done again."""

    @functools.wraps(fn)
    def again(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        for attempt in range(3):
            try:
                return fn(*args, **kwargs)
            except sa.exc.DBAPIError as exc:
                if attempt == 2 or not deadlocked(exc):
                    raise
            time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    return again


_NO_SUCH_TABLE = (
    re.compile(r"no such table: (\S+)"),  # SQLite
    re.compile(r'relation "([^"]+)" does not exist'),  # PostgreSQL (SQLSTATE 42P01)
    re.compile(r"Table '(?:[^'.]+\.)?([^']+)' doesn't exist"),  # MariaDB/MySQL (error 1146)
)


def missing_table(exc: BaseException) -> str | None:
    """The table a statement met missing, when ``exc`` says one is (the schema dropped, or a
    ``db reset`` from a process that did not see this one running), else None. Not an outage:
    waiting for the server does not bring the tables back, and a service that took it for one
    tried again for ever (SQLite) or died with a traceback (PostgreSQL)."""
    orig = getattr(exc, "orig", None)
    if not isinstance(exc, sa.exc.DBAPIError) or orig is None:
        return None
    code = orig.args[0] if orig.args else None
    if getattr(orig, "sqlstate", None) != "42P01" and code != 1146 and "no such table" not in str(orig):
        return None
    for pattern in _NO_SUCH_TABLE:
        found = pattern.search(str(orig))
        if found:
            return found.group(1)
    return "?"


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be used right now (down, restarting, the
    connection cut, SQLite locked past its busy timeout), rather than a mistake in a statement:
    a long-running service waits and tries again instead of dying."""
    if isinstance(exc, DatabaseUnreachableError):
        return True
    if missing_table(exc) is not None:
        return False
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | sa.exc.InterfaceError)


def ping(engine: Engine) -> None:
    """Connect and run a trivial query; raises ``DatabaseUnreachableError`` when that fails."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except OperationalError as exc:
        raise unreachable(engine.url, exc) from None
