"""State shared by the CLI commands: settings loaded once, and error handling."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ductwork.errors import DuctworkError
from ductwork.settings import Settings

if TYPE_CHECKING:
    from ductwork.cli.flow_index import FlowIndex
    from ductwork.core.flow import Flow
    from ductwork.core.graph import FlowGraph


@dataclass
class CliState:
    config_path: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    _settings: Settings | None = None
    _index: Any = None
    engine: Any = None
    """The metadata database's engine, once a command asked for it (``engine_state.store``):
    the audit entry written after the command goes through its pool, with no new connection."""

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.load(config_path=self.config_path, overrides=self.overrides)
        return self._settings

    @property
    def flow_index(self) -> FlowIndex:
        """The flow files as parsed in child processes, remembered (``cli.flow_index``)."""
        if self._index is None:
            from ductwork.cli.flow_index import FlowIndex

            settings = self.settings
            self._index = FlowIndex(settings.home, timeout=settings.parse_timeout, config_path=self.config_path)
        index: FlowIndex = self._index
        return index


def load_checked(state: CliState, flow_ref: str) -> Flow:
    """The flow named by ``flow_ref``, imported in this process (to run its tasks here) under
    ``import_guard``: a file that calls ``os._exit()`` or hangs at import is reported as an
    import error instead of ending or hanging the command. A flow named by its id is found
    through the flow index (the folder's files parsed in a child process), so that only the
    flow's own file is imported here; a file named outright is imported once, here."""
    return load_checked_graph(state, flow_ref)[0]


def load_checked_graph(state: CliState, flow_ref: str) -> tuple[Flow, FlowGraph | None]:
    """``load_checked``, with the graph compiled when the flow was validated (for a command
    that runs the flow at once, and does not change it)."""
    from ductwork.import_guard import guarded_import
    from ductwork.loading import load_flow_and_graph, names_a_file

    if not names_a_file(flow_ref):
        entry, flow_id = state.flow_index.resolve(flow_ref, state.settings.flows_folder)
        flow_ref = f"{entry.file}:{flow_id}"
    with guarded_import(state.settings.parse_timeout):
        return load_flow_and_graph(flow_ref, state.settings.flows_folder)


class DuctworkGroup(click.Group):
    """A click group that turns ``DuctworkError`` into a clean message and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoSuchCommand as exc:
            raise _unknown_command(exc) from None
        except DuctworkError as exc:
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(2)
        except KeyboardInterrupt:  # Ctrl-C (`tasks logs --follow`...): 130 as from a shell, not click's 1
            click.echo(err=True)
            sys.exit(130)
        except BrokenPipeError:  # `ductwork runs list --json | head -1`: the reader has gone
            from ductwork.cli.output import reader_gone, stdout_reader_gone

            if not stdout_reader_gone():  # another pipe (a program the command feeds): its own error
                raise
            sys.exit(reader_gone())
        except Exception as exc:
            message = _read_only(exc) or _disk_full(exc) or _missing_extra(exc) or _unusable_home(exc, ctx)
            if message is None:
                raise
            click.secho(f"Error: {message}", fg="red", err=True)
            sys.exit(2)


AIRFLOW_COMMANDS: dict[tuple[str, str], str] = {
    ("", "dags"): "Airflow's `dags` commands are `ductwork flows` (list, show, pause, unpause), "
    "`ductwork trigger`, `ductwork backfill`, `ductwork run` (as `dags test`) and `ductwork runs list`",
    ("", "dag"): "Airflow's `dags` commands are `ductwork flows`, `ductwork trigger`, `ductwork backfill` "
    "and `ductwork runs list`",
    ("", "version"): "The version is printed by `ductwork --version`",
    ("", "api-server"): "Airflow's `api-server` is `ductwork webserver` (the web UI and the REST API, /api/v1)",
    ("", "dag-processor"): "The scheduler reads the flows folder itself (`ductwork scheduler`); "
    "`ductwork flows list` shows the files that fail to import",
    ("", "celery"): "Airflow's `celery worker` is `ductwork worker`",
    ("db", "migrate"): "Airflow's `db migrate` is `ductwork db upgrade` (or `ductwork db init`)",
    ("tasks", "states-for-dag-run"): "A run's task states are `ductwork tasks state FLOW RUN`",
    ("tasks", "failed-deps"): "Why a task ran or did not is `ductwork why FLOW TASK [RUN]`",
    ("flows", "trigger"): "A run is queued with `ductwork trigger FLOW`",
    ("flows", "backfill"): "Use `ductwork backfill FLOW --start ... --end ...`",
    ("flows", "list-runs"): "The runs of a flow are `ductwork runs list FLOW`",
    ("flows", "test"): "Airflow's `dags test` is `ductwork run FLOW`",
    ("tasks", "list"): "A flow's tasks are shown by `ductwork flows show FLOW`",
    ("tasks", "run"): "One task is run by `ductwork tasks test FLOW TASK`",
    ("pools", "get"): "Pools are shown by `ductwork pools list`",
    ("tokens", "delete"): "A token is revoked with `ductwork tokens revoke ID` (`ductwork tokens list` shows the ids)",
    ("users", "add-role"): "A user's role is set with `ductwork users role NAME ROLE`",
    ("users", "remove-role"): "A user's role is set with `ductwork users role NAME ROLE`",
}
"""Commands an Airflow user types from habit, by (group, name), and what Ductwork calls them."""


def _unknown_command(exc: click.exceptions.NoSuchCommand) -> click.exceptions.NoSuchCommand:
    """``exc`` with its "Did you mean" suggestions taken from every command of its group, and
    Airflow's name for a command pointed at Ductwork's. The root group imports its commands
    lazily: click suggested only among those already imported (none), so ``ductwork flow``
    said nothing of ``flows``."""
    ctx = exc.ctx
    group = ctx.command if ctx is not None else None
    if ctx is None or not isinstance(group, click.Group):
        return exc
    path = ctx.command_path.split()[1:]
    hint = AIRFLOW_COMMANDS.get((" ".join(path), exc.command_name))
    message = f"No such command {exc.command_name!r}." + (f" {hint}." if hint else "")
    possibilities = None if hint else group.list_commands(ctx)
    return click.exceptions.NoSuchCommand(exc.command_name, message=message, possibilities=possibilities, ctx=ctx)


EXTRAS: dict[str, str] = {
    "fastapi": "web",
    "uvicorn": "web",
    "multipart": "web",
    "argon2": "web",
    "celery": "celery",
    "kombu": "celery",
    "kubernetes": "kubernetes",
    "psycopg": "postgres",
    "pymysql": "mysql",
    "prometheus_client": "metrics",
    "fsspec": "fs",
    "s3fs": "s3",
    "gcsfs": "gcs",
    "cryptography": "crypto",
}
"""The packages Ductwork's own code imports only when a command needs them, and the extra
that brings each (pyproject's optional dependencies)."""


def _missing_extra(exc: BaseException) -> str | None:
    """An optional package that Ductwork itself imported and is not installed, in one line
    naming the extra to install (``ductwork webserver`` after ``pip install 'ductwork[postgres]'``
    was a traceback ending in ``No module named 'fastapi'``). Only an import made by Ductwork's
    own code: a flow's import of a missing package stays the flow's error."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    module = exc.name.split(".", 1)[0]
    extra = EXTRAS.get(module)
    if extra is None or not _raised_by_ductwork(exc):
        return None
    return f"this needs the Python package {module!r}, which is not installed: pip install 'ductwork[{extra}]'"


def _raised_by_ductwork(exc: BaseException) -> bool:
    """Whether the innermost frame outside the import machinery is in Ductwork's package, or
    in SQLAlchemy's (which imports the database driver that the metadata database's URL names)."""
    import sqlalchemy

    owners = (Path(__file__).resolve().parents[1], Path(sqlalchemy.__file__).resolve().parent)
    last: str | None = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not filename.startswith("<"):
            last = filename
        tb = tb.tb_next
    return last is not None and any(Path(last).resolve().is_relative_to(owner) for owner in owners)


def _first_line(exc: BaseException) -> str:
    """The driver's message (not SQLAlchemy's wrapping), its first line."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _disk_full(exc: BaseException) -> str | None:
    """A write refused because the disk is full, in one line: SQLite says ``database or disk is
    full`` at the commit when its file could be opened (a scheduler keeps it open), PostgreSQL
    ``No space left on device``, a file Ductwork writes ENOSPC. It was a traceback."""
    import errno

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"no space left on the disk{where}: free some space (or move DUCTWORK_HOME) and run it again"
    first = _first_line(exc)
    if "database or disk is full" in first or "no space left on device" in first.lower():
        return (
            f"the metadata database cannot be written ({first}): nothing of this command was recorded; free "
            "some space on the disk that holds it and run it again"
        )
    return None


def _unusable_home(exc: BaseException, ctx: click.Context) -> str | None:
    """A home that cannot be made or written (``--home /var/lib/ductwork`` without the right,
    a path under a file or under ``/proc``), in one line naming it: it was a traceback from
    the first command that made its database's folder. Only an error on the home itself, or on
    a path inside it or above it: any other file's error keeps its traceback."""
    import errno

    usual = (errno.EACCES, errno.EPERM, errno.ENOENT, errno.ENOTDIR, errno.EROFS, errno.EISDIR)
    if not isinstance(exc, OSError) or exc.errno not in usual or not exc.filename:
        return None
    state = ctx.obj
    home = state._settings.home if isinstance(state, CliState) and state._settings is not None else None
    if home is None:
        return None
    where = Path(os.fsdecode(exc.filename)).expanduser().absolute()
    home = Path(home).expanduser().absolute()
    if not (where == home or where.is_relative_to(home) or home.is_relative_to(where)):
        return None
    return (
        f"the Ductwork home {str(home)!r} cannot be used: {exc.strerror or exc} ({where}); "
        "give it a folder you can write (--home, DUCTWORK_HOME, or home in ductwork.toml)"
    )


def _read_only(exc: BaseException) -> str | None:
    """A write refused because the database (or its folder) is read-only, in one line: it was
    a traceback from whichever command wrote first."""
    first = _first_line(exc)
    if "readonly database" in first or "read-only file system" in first.lower():
        return (
            f"the metadata database cannot be written ({first}): this command records what it does; "
            "give it a writable database (DUCTWORK_DATABASE_URL, or the file's permissions)"
        )
    return None
