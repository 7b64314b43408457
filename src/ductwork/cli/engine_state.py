"""The store engine for CLI commands, and registering a flow the scheduler has not parsed yet."""

from __future__ import annotations

from sqlalchemy import Engine

from ductwork.cli.state import CliState
from ductwork.core.config import ParamSources, use_sources
from ductwork.loading import load_flow
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.repo import flows as flow_repo


def store(state: CliState) -> Engine:
    """The metadata database, created (migrated to head) when it is empty."""
    engine = create_engine(state.settings.db_url)
    if migrate.current_revision(engine) is None:
        migrate.upgrade(engine)
    migrate.check(engine)
    return engine


def ensure_flow(state: CliState, engine: Engine, flow_ref: str) -> str:
    """The flow id of ``flow_ref``; a flow not in the database yet (the scheduler has not parsed
    it) is read from the flows folder, or from ``file.py:flow_id``, and registered."""
    file_part = flow_ref.partition(":")[0]
    if not file_part.endswith(".py"):
        with read_transaction(engine) as conn:
            if flow_repo.get_flow(conn, flow_ref) is not None:
                return flow_ref
    with use_sources(ParamSources.load(config_path=state.config_path)):
        flow = load_flow(flow_ref, state.settings.flows_folder)
        graph = flow.to_graph()
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, graph, fileloc=flow.fileloc)
    return flow.flow_id
