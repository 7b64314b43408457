"""Engines and transactions: SQLite settings, URLs, errors that name the problem, UTC times."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from store_helpers import IST, graph

from dbfixtures import temporary_database
from ductwork.core.states import TaskState
from ductwork.errors import DuctworkError
from ductwork.store.engine import (
    create_engine,
    mask_url,
    parse_url,
    ping,
    read_transaction,
    transaction,
)
from ductwork.store.errors import DatabaseUnreachableError, DriverMissingError
from ductwork.store.records import PoolRecord
from ductwork.store.repo import flows, pools


def test_sqlite_is_configured_for_concurrent_use(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "d.db"
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
        assert pragma == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 30000, "foreign_keys": 1}
        assert path.parent.is_dir()
    finally:
        engine.dispose()


def test_parse_url_fills_in_shipped_drivers() -> None:
    assert parse_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("mysql://u@h/db").drivername == "mysql+pymysql"
    assert parse_url("mariadb://u@h/db").drivername == "mariadb+pymysql"
    assert parse_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert parse_url("sqlite:///x.db").drivername == "sqlite"


def test_mask_url_hides_the_password() -> None:
    masked = mask_url("postgresql+psycopg://alice:s3cret@db.example:5432/ductwork")
    assert "s3cret" not in masked and "alice:***@db.example:5432" in masked


def test_missing_driver_names_the_extra() -> None:
    with pytest.raises(DriverMissingError, match=r"pip install 'ductwork\[postgres\]'") as info:
        create_engine("postgresql+psycopg2://u:pw@localhost/x")
    assert "pw" not in str(info.value)
    assert isinstance(info.value, DuctworkError)


def test_a_url_of_no_metadata_database_says_so_not_to_install_a_driver() -> None:
    """``redis://`` said "needs the driver 'redis', which is not available", as if installing
    one would help; a misspelt scheme got no suggestion."""
    with pytest.raises(DriverMissingError, match=r"'redis' cannot hold Ductwork's metadata") as info:
        create_engine("redis://:pw@localhost:6379/0")
    assert "pip install" not in str(info.value) and "pw" not in str(info.value)
    with pytest.raises(DriverMissingError, match=r"Did you mean 'postgresql'\?"):
        create_engine("postgressql://u@localhost/x")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_unreachable_server_names_host_and_port(scheme: str) -> None:
    port = _closed_port()
    engine = create_engine(f"{scheme}://u:pw@127.0.0.1:{port}/x")
    with pytest.raises(DatabaseUnreachableError, match=f"127.0.0.1:{port}") as info:
        ping(engine)
    assert "pw" not in str(info.value)
    with pytest.raises(DatabaseUnreachableError), transaction(engine):
        pass


def test_transaction_rolls_back_on_error(db_engine: Engine) -> None:
    with pytest.raises(RuntimeError), transaction(db_engine) as conn:
        pools.put_pool(conn, "io", 2)
        raise RuntimeError("boom")
    with read_transaction(db_engine) as conn:
        assert pools.get_pool(conn, "io") is None


def test_read_transaction_does_not_keep_writes(db_engine: Engine) -> None:
    with read_transaction(db_engine) as conn:
        pools.put_pool(conn, "io", 2)
    with read_transaction(db_engine) as conn:
        assert pools.get_pool(conn, "io") is None


def test_aware_datetimes_come_back_aware_utc_with_microseconds(db_engine: Engine) -> None:
    when = dt.datetime(2024, 3, 31, 1, 30, 15, 123456, tzinfo=IST)
    with transaction(db_engine) as conn:
        flows.upsert_flow(conn, graph(), now=when)
        flows.set_next_run(conn, "etl", logical_date=when, interval_start=when, interval_end=None, now=when)
    with read_transaction(db_engine) as conn:
        record = flows.get_flow(conn, "etl")
    assert record is not None
    for value in (record.created_at, record.next_logical_date, record.next_interval_start):
        assert value == when
        assert value is not None and value.tzinfo is not None and value.utcoffset() == dt.timedelta(0)
    assert record.next_interval_end is None


def test_naive_datetimes_are_refused(db_engine: Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), transaction(db_engine) as conn:
        flows.upsert_flow(conn, graph(), now=dt.datetime(2024, 1, 1))


def test_importing_the_store_does_no_io(tmp_path: Path) -> None:
    import subprocess
    import sys

    home = tmp_path / "home"
    code = (
        "import ductwork.store.engine, ductwork.store.tables, ductwork.store.migrate, ductwork.store.sink, "
        "ductwork.store.results, ductwork.store.repo, ductwork.cli.main"
    )
    env = {"DUCTWORK_HOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no database file, no home folder


def test_concurrent_writers_wait_instead_of_failing(db_engine: Engine) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from store_helpers import T0

    from ductwork.store.repo import runs, tasks

    def work(worker: int) -> None:
        for i in range(10):
            with transaction(db_engine) as conn:
                run = runs.create_run(conn, graph(), run_id=f"w{worker}_{i}", logical_date=T0)
                tasks.mark_task_instances(conn, run.pk, ["a"], TaskState.SUCCESS, downstream=True)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(4)))
    with read_transaction(db_engine) as conn:
        assert runs.list_runs(conn).total == 40


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])  # SQLite has no sessions (one scheduler, ADR 0009)
def test_a_session_idle_in_a_transaction_past_its_limit_lets_go_of_its_locks(tmp_path: Path, backend: str) -> None:
    """``idle_in_transaction``: a process frozen with a row locked stops blocking the others (the
    server ends its session), and its next statement fails as a database fault it can ride out."""
    with temporary_database(backend, tmp_path) as db_url:
        _idle_session_lets_go(db_url)


def _idle_session_lets_go(db_url: str) -> None:
    from ductwork.store import migrate
    from ductwork.store.engine import database_unavailable

    migrate.upgrade(plain := create_engine(db_url))
    frozen = create_engine(db_url, name="ductwork test", idle_in_transaction=1)
    try:
        with transaction(plain) as conn:
            pools.put_pool(conn, "io", 4)
        with pytest.raises(sa.exc.DBAPIError) as failed, transaction(frozen) as conn:
            conn.execute(sa.text("SELECT slots FROM pools WHERE name = 'io' FOR UPDATE"))
            with transaction(plain) as other:  # waits on the lock until the server ends the frozen session
                postgres = plain.url.get_backend_name() == "postgresql"
                other.execute(
                    sa.text("SET LOCAL lock_timeout = '10s'" if postgres else "SET innodb_lock_wait_timeout = 10")
                )
                pools.put_pool(other, "io", 8)
            conn.execute(sa.text("SELECT 1"))
        assert database_unavailable(failed.value)
        with read_transaction(frozen) as conn:  # a new session works
            assert pools.get_pool(conn, "io") == PoolRecord("io", 8, "")
    finally:
        frozen.dispose()
        plain.dispose()


def test_the_idle_limit_keeps_the_options_a_postgres_url_gives(tmp_path: Path) -> None:
    with temporary_database("postgres", tmp_path) as url:
        engine = create_engine(f"{url}?options=-csearch_path%3Dpublic", idle_in_transaction=3)
        try:
            with engine.connect() as conn:
                assert conn.exec_driver_sql("SHOW search_path").scalar() == "public"
                assert conn.exec_driver_sql("SHOW idle_in_transaction_session_timeout").scalar() == "3s"
        finally:
            engine.dispose()


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
def test_a_pooled_connection_killed_while_idle_is_replaced_unseen(
    tmp_path: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection the server ended while it sat in the pool (a restart, an idle timeout) is
    checked before its next use and replaced: the caller's transaction just works. One used a
    moment ago is handed out without that round trip."""
    from ductwork.store import engine as store_engine

    monkeypatch.setattr(store_engine, "PING_AFTER_IDLE", 0.3)
    with temporary_database(backend, tmp_path) as db_url:
        engine = create_engine(db_url)
        admin = create_engine(db_url)
        pings: list[object] = []
        real_ping = engine.dialect.do_ping
        monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or real_ping(c))
        postgres = backend == "postgres"
        try:
            with read_transaction(engine) as conn:
                session = conn.exec_driver_sql("SELECT pg_backend_pid()" if postgres else "SELECT CONNECTION_ID()")
                pid = session.scalar()
            with read_transaction(engine) as conn:  # used a moment ago: no round trip first
                conn.exec_driver_sql("SELECT 1")
            assert pings == []
            with admin.connect() as other:
                other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})" if postgres else f"KILL {int(pid)}")
            store_engine.time.sleep(0.4)  # idle past the limit
            with read_transaction(engine) as conn:
                again = conn.exec_driver_sql("SELECT pg_backend_pid()" if postgres else "SELECT CONNECTION_ID()")
                assert again.scalar() != pid  # a new session, and no error
            assert len(pings) == 1
        finally:
            engine.dispose()
            admin.dispose()


@pytest.mark.parametrize("backend", ["postgres", "mariadb"])
def test_a_deadlock_victim_is_done_again(backend: str, tmp_path: Path) -> None:
    """Two transactions locking two rows in opposite orders: the server kills one of them; a
    user's change wrapped in ``retry_deadlocks`` (clear, mark, cancel) is done again and succeeds
    instead of failing with the server's 'Deadlock found' / 'deadlock detected'."""
    import threading

    from dbfixtures import temporary_database
    from ductwork.store.engine import create_engine, retry_deadlocks

    with temporary_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            with transaction(engine) as conn:
                conn.execute(sa.text("CREATE TABLE pair (id INTEGER PRIMARY KEY, n INTEGER)"))
                conn.execute(sa.text("INSERT INTO pair VALUES (1, 0), (2, 0)"))
            both_hold = threading.Barrier(2, timeout=10)
            calls: list[str] = []

            def bump(first: int, second: int) -> None:
                calls.append(f"{first}{second}")
                with transaction(engine) as conn:
                    conn.execute(sa.text("UPDATE pair SET n = n + 1 WHERE id = :i"), {"i": first})
                    if len(calls) <= 2:
                        both_hold.wait()  # each holds its first row: the second lock closes the circle
                    conn.execute(sa.text("UPDATE pair SET n = n + 1 WHERE id = :i"), {"i": second})

            errors: list[BaseException] = []

            def run(first: int, second: int) -> None:
                try:
                    retry_deadlocks(bump)(first, second)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=pair) for pair in ((1, 2), (2, 1))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert not errors, errors
            assert len(calls) == 3  # one of them was the victim, and was done again
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT SUM(n) FROM pair")).scalar() == 4
        finally:
            engine.dispose()
