"""Ductwork's tables dropped, or dropped and made again, under a running scheduler (someone's
``DROP SCHEMA``, a restore, a reset from a machine that did not see the scheduler): it stops
with one line saying what happened and what to do. On PostgreSQL it died with a traceback per
write; on SQLite it took the missing table for an outage, then went on heartbeating a job row
that no longer existed, its flows never registered again."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine
from ductwork.store.errors import SchemaGoneError
from tests.remote.support import wait_for

FLOW = """
from ductwork import EmptyOperator, Flow

with Flow("hourly") as flow:
    EmptyOperator(task_id="a")
"""


def _drop_everything(url: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    tables = sa.MetaData()
    tables.reflect(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        elif engine.dialect.name == "mysql":
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS=0")
        for table in reversed(tables.sorted_tables):
            table.drop(conn)
    engine.dispose()


@pytest.mark.parametrize("made_again", [False, True], ids=["dropped", "dropped-and-made-again"])
def test_a_scheduler_whose_tables_go_away_stops_saying_so(db_url: str, tmp_path: Path, made_again: bool) -> None:
    engine = create_engine(db_url)
    migrate.upgrade(engine)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "hourly.py").write_text(FLOW)
    settings = Settings(home=tmp_path / "home", flows_folder=flows, database_url=db_url, parallelism=1)
    options = SchedulerOptions(poll_interval=0.2, job_heartbeat=0.2)
    service = SchedulerService(settings, options=options)
    raised: list[BaseException] = []

    def run() -> None:
        try:
            service.run()
        except BaseException as exc:  # what the command would print
            raised.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:

        def listed() -> bool:
            with engine.connect() as conn:
                return conn.execute(sa.text("SELECT count(*) FROM flows")).scalar() == 1

        wait_for(listed, 60, "the flow listed")
        engine.dispose()
        _drop_everything(db_url)
        if made_again:
            migrate.upgrade(engine)
        thread.join(timeout=60)
        assert not thread.is_alive(), "the scheduler went on without its tables"
    finally:
        service.stop()
        thread.join(timeout=60)
        engine.dispose()
    assert len(raised) == 1 and isinstance(raised[0], SchemaGoneError), raised
    said = str(raised[0])
    assert "start the scheduler again" in said.lower()
    if not made_again:
        assert "ductwork db upgrade" in said
