"""``ductwork db``: create, upgrade, check and reset the metadata database.

The database URL comes from the settings (``DUCTWORK_DATABASE_URL``, ``ductwork.toml``, or
the SQLite file in the Ductwork home). Passwords are never printed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from ductwork.cli.state import CliState
from ductwork.errors import DuctworkError


@contextmanager
def _engine(state: CliState) -> Iterator[Engine]:
    from ductwork.store.engine import create_engine, ping

    engine = create_engine(state.settings.db_url)
    try:
        ping(engine)
        yield engine
    finally:
        engine.dispose()


def _where(engine: Engine) -> str:
    from ductwork.store.engine import mask_url

    return mask_url(engine.url)


@click.group()
def db() -> None:
    """Create, upgrade, check or reset the metadata database."""


@db.command()
@click.pass_obj
def init(state: CliState) -> None:
    """Create the database schema, or upgrade it to this version (safe to run again)."""
    from ductwork.store import migrate

    with _engine(state) as engine:
        before = migrate.current_revision(engine)
        revision = _migrate(engine, before)
        action = "created" if before is None else ("already at head" if before == revision else "upgraded")
        click.echo(f"Database: {_where(engine)}")
        click.echo(f"Revision: {revision} ({action})")


@db.command()
@click.pass_obj
def upgrade(state: CliState) -> None:
    """Apply the migrations this version has that the database lacks."""
    from ductwork.store import migrate

    with _engine(state) as engine:
        before = migrate.current_revision(engine)
        if before is not None and before != migrate.head_revision():
            _warn_of_live_jobs(engine)
        revision = _migrate(engine, before)
        click.echo(f"Database: {_where(engine)}")
        if before == revision:
            click.echo(f"Revision: {revision} (already at head, nothing to do)")
        else:
            click.echo(f"Revision: {before or 'empty'} -> {revision}")


def _migrate(engine: Engine, before: str | None) -> str:
    """``migrate.upgrade``, with a migration the database refuses told in a few lines: which
    step failed, the database's own reason, and where the schema was left. It ended in a
    60-line traceback (MariaDB's "Duplicate column name" of a step that had half run: its
    schema changes are not transactional, so an interrupted step leaves what it had done)."""
    import sqlalchemy as sa

    from ductwork.store import migrate

    try:
        return migrate.upgrade(engine)
    except sa.exc.SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        statement = (getattr(exc, "statement", None) or "").strip().splitlines()
        try:
            now: str | None = migrate.current_revision(engine)
        except Exception:  # the database went away as well: say what is known
            now = "unknown"
        head = migrate.head_revision()
        click.secho(
            f"Error: the migration of {_where(engine)} from revision {before or 'empty'} to {head} failed: "
            f"{reason}" + (f" (in: {statement[0][:200]})" if statement else ""),
            fg="red",
            err=True,
        )
        left = f"The database is at revision {now or 'empty'}"
        if engine.dialect.name in ("mysql", "mariadb"):
            left += (
                "; MariaDB and MySQL do not roll back schema changes, so the failed step may have left some of "
                "its changes (a column or table that is there already): restore the backup taken before the "
                "upgrade, or undo them by hand, and run `ductwork db upgrade` again"
            )
        elif engine.dialect.name == "postgresql":
            left += " (the failed step was rolled back); fix the cause and run `ductwork db upgrade` again"
        else:
            left += "; fix the cause and run `ductwork db upgrade` again"
        click.echo(left + ".", err=True)
        sys.exit(1)


LIVE_JOB_WINDOW = 30.0
"""Seconds: a scheduler or triggerer that heartbeat this recently is taken to be running (as
the web server's health says ``alive``)."""


def _live_jobs(engine: Engine) -> str:
    """The schedulers and triggerers heartbeating on the database (``scheduler pid 12 on host``,
    comma-separated; empty when none). Only the columns of the first revision are read, so any
    older database answers; one that cannot say (no such table yet) has none."""
    import datetime as dt

    import sqlalchemy as sa

    from ductwork.store.types import UtcDateTime

    since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=LIVE_JOB_WINDOW)
    query = sa.text(
        "SELECT kind, hostname, pid FROM scheduler_jobs WHERE state = 'running' "
        "AND kind IN ('scheduler', 'triggerer') AND heartbeat_at >= :since ORDER BY kind, hostname, pid"
    ).bindparams(sa.bindparam("since", type_=UtcDateTime()))
    try:
        with engine.connect() as conn:
            live = conn.execute(query, {"since": since}).all()
    except sa.exc.SQLAlchemyError:
        return ""
    return ", ".join(f"{kind} pid {pid} on {host}" for kind, host, pid in live)


def _warn_of_live_jobs(engine: Engine) -> None:
    """Name the schedulers and triggerers heartbeating on the database before it is migrated.
    One of an older version died of the upgrade without a word from it (on PostgreSQL a
    "deadlock detected" traceback in its own log, as the migration locked its tables); a
    database that cannot say is upgraded all the same."""
    named = _live_jobs(engine)
    if named:
        click.secho(
            f"warning: still running on this database (a heartbeat within {LIVE_JOB_WINDOW:g}s): {named}. "
            "An older version can fail on the upgraded tables: stop schedulers, triggerers and workers "
            "before `db upgrade`, then start them with this version (a restarted scheduler takes its "
            "runs over)",
            fg="yellow",
            err=True,
        )


def _missing_sqlite_file(url: str) -> str | None:
    """The SQLite file ``url`` names when it does not exist. Opening it would create it: ``db
    check`` on a mistyped DUCTWORK_HOME left that folder and an empty database file behind,
    which the next command then took for a database to fill."""
    from pathlib import Path

    if not url.startswith("sqlite:///"):
        return None
    import sqlalchemy as sa

    database = sa.make_url(url).database  # unescaped: a home may have "?" or "%" in its path
    if not database or database.startswith("file:") or Path(database).exists():
        return None
    return database


@db.command()
@click.pass_obj
def check(state: CliState) -> None:
    """Exit 1, saying why, unless the database is reachable and at this version's schema."""
    from ductwork.store import migrate

    missing = _missing_sqlite_file(state.settings.db_url)
    if missing is not None:  # a check must not leave an empty database (and its home) behind
        click.secho(
            f"Error: the database file {missing} does not exist; create it with `ductwork db init`",
            fg="red",
            err=True,
        )
        sys.exit(1)
    try:
        with _engine(state) as engine:
            revision = migrate.check(engine)
            where = _where(engine)
    except DuctworkError as exc:
        click.secho(f"Error: {exc}", fg="red", err=True)
        sys.exit(1)
    click.echo(f"Database: {where}")
    click.echo(f"Revision: {revision} (up to date)")


def _confirmed(question: str) -> bool:
    """Whether ``question`` was answered yes; no answer (standard input closed: a cron job, a
    CI step) is no."""
    try:
        return click.confirm(question)
    except click.Abort:  # end of input (or Ctrl-D)
        click.echo(err=True)
        return False


@db.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def reset(state: CliState, yes: bool) -> None:
    """Drop every Ductwork table and create the schema again. Deletes all runs and history.
    Refused while a scheduler or triggerer heartbeats on the database. The runs' try logs are
    deleted with them."""
    from ductwork.store import migrate

    with _engine(state) as engine:
        # Its tables dropped under it, a running scheduler died in a traceback (a foreign key
        # or a table gone) with its runs; refused before the question, so nothing is asked.
        named = _live_jobs(engine)
        if named:
            click.secho(
                f"Error: still running on this database (a heartbeat within {LIVE_JOB_WINDOW:g}s): {named}. "
                "Stop them before `db reset`, which would drop the tables under them; nothing was changed",
                fg="red",
                err=True,
            )
            sys.exit(2)
        if not yes and not _confirmed(f"Delete all Ductwork data in {_where(engine)}?"):
            # click's "Aborted!" said neither whether anything was deleted nor how a script says yes
            click.echo("Nothing was deleted (answer y, or give --yes where nobody can answer)", err=True)
            sys.exit(1)
        from ductwork.services import cleanup

        try:  # the runs' log folders go with them: a new run of the same id appended to the old log
            dropped = cleanup.recorded_runs(engine)
        except Exception:  # no tables (an empty or broken database): no runs, no logs of theirs
            dropped = None
        revision = migrate.reset(engine)
        click.echo(f"Database: {_where(engine)}")
        click.echo(f"Revision: {revision} (reset)")
        if dropped is not None and dropped.runs:
            files = cleanup.remove_run_logs(dropped, state.settings.logs)
            click.echo(f"Logs: deleted the try logs of {len(dropped.runs)} run(s) ({files} file(s))")
