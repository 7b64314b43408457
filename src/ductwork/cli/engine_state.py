"""The store engine for CLI commands, and recording a flow as its file defines it now."""

from __future__ import annotations

import os
from pathlib import Path

import click
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from ductwork.cli.flow_index import FileEntry
from ductwork.cli.state import CliState
from ductwork.errors import DuctworkError, NotFoundError
from ductwork.store.engine import create_engine, mask_url, read_transaction, transaction, unreachable
from ductwork.store.fresh_schema import ensure_schema
from ductwork.store.repo import flows as flow_repo


def store(state: CliState) -> Engine:
    """The metadata database, created (migrated to head) when it is empty; one engine per
    command, however often it asks."""
    if state.engine is not None:
        return state.engine
    engine = create_engine(state.settings.db_url)
    try:
        ensure_schema(engine)
    except (OperationalError, InterfaceError) as exc:  # the first connection: a line, not a traceback
        engine.dispose()
        raise unreachable(engine.url, exc) from None
    except OSError as exc:  # the lock file beside a SQLite database: a read-only or full disk
        engine.dispose()
        raise DuctworkError(
            f"cannot use the database {mask_url(engine.url)}: {exc.strerror or exc} ({exc.filename}); "
            "DUCTWORK_HOME (or the database's folder) must be writable"
        ) from None
    state.engine = engine
    ctx = click.get_current_context(silent=True)
    if ctx is not None:  # its connections close when the command ends, however the process ends
        ctx.find_root().call_on_close(engine.dispose)
    return engine


def ensure_flow(state: CliState, engine: Engine, flow_ref: str) -> str:
    """The flow id of ``flow_ref``, recorded in the database as its file defines it now.

    The file is parsed in a child process when it changed since it was last parsed (the
    scheduler may not be running to do it), so a run queued from here has the tasks the file
    has now, and a backfill plans the schedule it has now. A flow recorded from a file outside
    the flows folder (or not on this machine) is taken as recorded, as the scheduler takes it."""
    index = state.flow_index
    file_part = flow_ref.partition(":")[0]
    if not Path(file_part).is_file() and not file_part.endswith((".py", ".json", ".yaml", ".yml")):
        with read_transaction(engine) as conn:
            record = flow_repo.get_flow(conn, flow_ref)
        if record is not None:
            if _deleted_from_folder(record.fileloc, state.settings.flows_folder):
                raise NotFoundError(
                    f"flow {flow_ref!r} was defined in {record.fileloc}, which no longer exists: nothing can run "
                    "it until a file of the flows folder defines it again"
                )
            if record.fileloc is None or not _in_folder(record.fileloc, state.settings.flows_folder):
                return flow_ref  # not a file of the flows folder here: nobody re-reads it, take it as recorded
            entry = index.file(record.fileloc)
            if flow_ref in entry.flows:
                return _record(engine, entry, flow_ref)
            for error in entry.errors:  # the file that defined it no longer imports
                raise error
    entry, flow_id = index.resolve(flow_ref, state.settings.flows_folder)
    return _record(engine, entry, flow_id)


def _deleted_from_folder(fileloc: str | None, folder: Path) -> bool:
    """Whether ``fileloc`` was a file of the flows folder that is gone (its flow stays recorded,
    with its runs, but its tasks cannot be loaded any more)."""
    if not fileloc or Path(fileloc).exists() or not folder.is_dir():
        return False
    return Path(os.path.abspath(fileloc)).is_relative_to(folder.resolve()) or Path(
        os.path.abspath(fileloc)
    ).is_relative_to(Path(os.path.abspath(folder)))


def _in_folder(fileloc: str | None, folder: Path) -> bool:
    if not fileloc or not Path(fileloc).is_file():
        return False
    return Path(fileloc).resolve().is_relative_to(folder.resolve())


def _record(engine: Engine, entry: FileEntry, flow_id: str) -> str:
    graph = entry.graph(flow_id)
    with transaction(engine) as conn:
        current = flow_repo.get_flow(conn, flow_id)
        if (
            current is None
            or current.version_hash != graph.version_hash()
            or not current.is_active
            or current.fileloc != entry.file
        ):
            flow_repo.upsert_flow(conn, graph, fileloc=entry.file)
    return flow_id
