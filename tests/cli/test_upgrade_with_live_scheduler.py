"""`ductwork db upgrade` while a scheduler of the older version still ran on the database said
nothing: the scheduler then died of the migration's locks (PostgreSQL: "deadlock detected",
a 100-line traceback in its log) or of the changed tables. The upgrade now names the live
schedulers and triggerers first, so whoever upgrades knows what to stop and restart."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from ductwork.store import migrate
from ductwork.store.engine import create_engine, transaction
from ductwork.store.types import UtcDateTime
from tests.conftest import Cli


def _database(tmp_path: Path, revision: str) -> tuple[str, sa.Engine]:
    url = f"sqlite:///{tmp_path / 'home' / 'ductwork.db'}"
    (tmp_path / "home").mkdir()
    engine = create_engine(url)
    migrate.upgrade(engine, revision)
    return url, engine


def _job(engine: sa.Engine, kind: str, pid: int, beat: dt.datetime, state: str = "running") -> None:
    # Columns of revision 0001: the table an older scheduler wrote (no "executor" yet).
    with transaction(engine) as conn:
        conn.execute(
            sa.text(
                "INSERT INTO scheduler_jobs (kind, hostname, pid, started_at, heartbeat_at, state) "
                "VALUES (:kind, 'oldhost', :pid, :beat, :beat, :state)"
            ).bindparams(sa.bindparam("beat", type_=UtcDateTime())),
            {"kind": kind, "pid": pid, "beat": beat, "state": state},
        )


def test_db_upgrade_names_the_schedulers_still_running_on_the_database(cli: Cli, tmp_path: Path) -> None:
    url, engine = _database(tmp_path, "0011")
    now = dt.datetime.now(dt.UTC)
    _job(engine, "scheduler", 4242, now - dt.timedelta(seconds=3))
    _job(engine, "triggerer", 4343, now - dt.timedelta(seconds=1))
    _job(engine, "scheduler", 1111, now - dt.timedelta(hours=2))  # died long ago: not named
    _job(engine, "scheduler", 2222, now, state="success")  # stopped: not named
    engine.dispose()
    done = cli("db", "upgrade", env={"DUCTWORK_DATABASE_URL": url, "DUCTWORK_HOME": str(tmp_path / "home")})
    assert done.exit_code == 0, done.output
    assert "0011 -> " in done.output
    assert "scheduler pid 4242 on oldhost" in done.stderr and "triggerer pid 4343 on oldhost" in done.stderr
    assert "1111" not in done.stderr and "2222" not in done.stderr
    assert "stop" in done.stderr


def test_db_upgrade_with_nothing_to_do_or_nobody_running_says_nothing_more(cli: Cli, tmp_path: Path) -> None:
    url, engine = _database(tmp_path, "0011")
    engine.dispose()
    env = {"DUCTWORK_DATABASE_URL": url, "DUCTWORK_HOME": str(tmp_path / "home")}
    first = cli("db", "upgrade", env=env)
    assert first.exit_code == 0 and first.stderr == ""
    engine = create_engine(url)
    _job(engine, "scheduler", 4242, dt.datetime.now(dt.UTC))
    engine.dispose()
    again = cli("db", "upgrade", env=env)  # at head: nothing changes under the scheduler
    assert again.exit_code == 0 and "nothing to do" in again.output and again.stderr == ""


@pytest.mark.parametrize("backend", ["sqlite", "mariadb"])
def test_a_migration_the_database_refuses_is_told_in_a_few_lines(cli: Cli, tmp_path: Path, backend: str) -> None:
    """A step that had half run (MariaDB does not roll back schema changes: the column was
    added, the revision not stamped) made every `db upgrade` end in a 60-line traceback. It
    names the step, the database's reason and the revision the database is left at."""
    from tests.dbfixtures import temporary_database

    with temporary_database(backend, tmp_path) as url:
        engine = create_engine(url)
        try:
            migrate.upgrade(engine, "0012")
            with transaction(engine) as conn:  # what 0013 adds, there already
                conn.execute(sa.text("ALTER TABLE scheduler_jobs ADD COLUMN fault TEXT"))
        finally:
            engine.dispose()
        result = cli("db", "upgrade", env={"DUCTWORK_DATABASE_URL": url})
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "from revision 0012 to 0013 failed" in result.output and "fault" in result.output
    assert "The database is at revision 0012" in result.output
    if backend == "mariadb":
        assert "do not roll back schema changes" in result.output
