"""``ductwork db`` through click's runner, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from ductwork.cli.main import cli
from ductwork.store import migrate
from ductwork.store.engine import create_engine, transaction
from ductwork.store.migrate import head_revision
from ductwork.store.repo import pools

backends = pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)

HEAD = head_revision()


def _with_password(url: str) -> str:
    """The URL with a password (ignored by the test servers' trust auth), to check it is masked."""
    parsed = sa.make_url(url)
    return parsed.set(password="hunter2").render_as_string(hide_password=False) if parsed.host else url


def db(url: str, *args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["db", *args], env={"DUCTWORK_DATABASE_URL": url}, input=input)
    return result.exit_code, result.output


@backends
def test_init_check_upgrade(db_url: str) -> None:
    url = _with_password(db_url)
    code, out = db(url, "check")
    assert code == 1 and "ductwork db init" in out
    code, out = db(url, "init")
    assert code == 0, out
    assert f"Revision: {HEAD} (created)" in out and "hunter2" not in out
    assert "Database: " in out
    code, out = db(url, "init")
    assert code == 0 and f"{HEAD} (already at head)" in out
    code, out = db(url, "check")
    assert code == 0 and f"{HEAD} (up to date)" in out
    code, out = db(url, "upgrade")
    assert code == 0 and "already at head, nothing to do" in out
    engine = create_engine(db_url)
    try:
        assert migrate.check(engine) == HEAD
    finally:
        engine.dispose()


@backends
def test_upgrade_from_empty(db_url: str) -> None:
    code, out = db(db_url, "upgrade")
    assert code == 0 and f"empty -> {HEAD}" in out


@backends
def test_reset_asks_unless_yes(db_url: str) -> None:
    assert db(db_url, "init")[0] == 0
    engine = create_engine(db_url)
    try:
        with transaction(engine) as conn:
            pools.put_pool(conn, "io", 3)
        code, out = db(db_url, "reset", input="n\n")
        assert code == 1 and "Nothing was deleted" in out and "Aborted" not in out
        with transaction(engine) as conn:
            assert pools.get_pool(conn, "io") is not None
        code, out = db(db_url, "reset", "--yes")
        assert code == 0 and f"{HEAD} (reset)" in out
        with transaction(engine) as conn:
            assert pools.get_pool(conn, "io") is None
    finally:
        engine.dispose()


def test_check_reports_an_unreachable_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, out = db(f"postgresql://u:pw@127.0.0.1:{port}/x", "check")
    assert code == 1
    assert f"127.0.0.1:{port}" in out and "pw@" not in out


def test_unknown_driver_names_the_extra() -> None:
    code, out = db("mysql+mysqldb://u:pw@localhost/x", "init")
    assert code == 2
    assert "pip install 'ductwork[mysql]'" in out and "mysql+pymysql://" in out


def test_default_database_lives_in_the_ductwork_home() -> None:
    result = CliRunner().invoke(cli, ["db", "init"])
    assert result.exit_code == 0, result.output
    assert "ductwork-home/ductwork.db" in result.output


@backends
def test_upgrading_a_database_a_newer_ductwork_migrated_says_so_in_one_line(db_url: str) -> None:
    """It was Alembic's "can't locate revision '0099'" traceback."""
    assert db(db_url, "init")[0] == 0
    engine = create_engine(db_url)
    try:
        with transaction(engine) as conn:
            conn.execute(sa.text(f"UPDATE {migrate.VERSION_TABLE} SET version_num = '0099'"))
    finally:
        engine.dispose()
    for command in ("upgrade", "init"):
        code, out = db(db_url, command)
        assert code != 0 and "ahead of this version" in out and "Traceback" not in out, out


def test_check_of_a_sqlite_file_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    """``db check`` opened the file, which made it (and the home holding it): a check run on a
    mistyped DUCTWORK_HOME left a folder and an empty database behind."""
    home = tmp_path / "typo-home"
    result = CliRunner().invoke(cli, ["db", "check"], env={"DUCTWORK_HOME": str(home), "DUCTWORK_DATABASE_URL": None})
    assert result.exit_code == 1, result.output
    assert f"the database file {home / 'ductwork.db'} does not exist" in result.output
    assert "ductwork db init" in result.output
    assert not home.exists()
