"""The worker's compare-and-set start: a message delivered twice runs its try once; a message
for a try that ended, or that the database has moved past, runs nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from ductwork.engine.executor import TryKey, TryRequest
from ductwork.engine.remote import wire
from ductwork.engine.remote.bundles import BundleSource
from ductwork.engine.remote.runner import DROPPED, STARTED, RemoteHost
from ductwork.loading import load_file
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.repo import tasks as task_repo
from ductwork.store.tables import task_instances

FLOW = """
import os
from pathlib import Path
from ductwork import Flow, PythonOperator

def mark():
    with open(os.environ["EFFECTS_FILE"], "a") as fh:
        fh.write("ran\\n")
    return 42

with Flow("once", schedule=None) as once:
    PythonOperator(task_id="only", python_callable=mark)
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "once.py").write_text(FLOW)
    effects = tmp_path / "effects.txt"
    monkeypatch.setenv("EFFECTS_FILE", str(effects))
    settings = Settings.load(
        environ={
            "DUCTWORK_HOME": str(tmp_path / "worker-home"),
            "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'db'}",
        }
    )
    engine = create_engine(settings.db_url)
    migrate.upgrade(engine)
    graph = load_file(flows / "once.py").flows[0].to_graph()
    at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    from ductwork.core.schedule import DataInterval

    record = run_service.create_run(
        engine, graph, run_type="manual", logical_date=at, interval=DataInterval(at, at), params={}, run_id="r1"
    )
    with transaction(engine) as conn:
        conn.execute(
            sa.update(task_instances).where(task_instances.c.run_pk == record.pk).values(state="queued", try_number=1)
        )
    code = BundleSource(engine, flows, recheck=0).ref(str(flows / "once.py"))
    info = run_service.run_info(record, graph.meta)
    request = TryRequest(TryKey(info.key, "only", 1), graph.nodes["only"], info)
    payload = wire.encode_request(request, run_pk=record.pk, code=code, reply_to="", flows_root=str(flows))
    host = RemoteHost(settings, "w@test")
    yield host, payload, engine, record, effects
    host.close()
    engine.dispose()


def test_a_message_delivered_twice_runs_once(world) -> None:
    host, payload, engine, record, effects = world
    assert host.run(payload) == STARTED
    assert host.run(payload) == DROPPED  # the broker redelivered it: the try has ended
    assert effects.read_text() == "ran\n"
    with read_transaction(engine) as conn:
        ti = task_repo.get_task_instance(conn, record.pk, "only")
        (attempt,) = task_repo.list_tries(conn, record.pk, "only")
    assert ti is not None and ti.state.value == "success" and ti.hostname == "w@test"
    assert attempt.state.value == "success"


def test_a_message_for_a_try_the_database_moved_past_runs_nothing(world) -> None:
    host, payload, engine, record, effects = world
    with transaction(engine) as conn:  # try 1 was declared lost and try 2 is queued
        conn.execute(sa.update(task_instances).where(task_instances.c.run_pk == record.pk).values(try_number=2))
    assert host.run(payload) == DROPPED
    assert not effects.exists()


def test_a_worker_on_another_database_says_so_when_it_drops_a_message(
    world, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A worker started without the scheduler's DUCTWORK_DATABASE_URL (its own SQLite file)
    takes messages from the shared broker and finds no such run: a warning naming the cause,
    not an INFO line about redelivery."""
    _host, payload, _engine, _record, effects = world
    elsewhere = Settings.load(
        environ={"DUCTWORK_HOME": str(tmp_path / "lost-home"), "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp_path / 'x'}"}
    )
    migrate.upgrade(create_engine(elsewhere.db_url))
    host = RemoteHost(elsewhere, "w@elsewhere")
    try:
        with caplog.at_level("INFO", logger="ductwork.worker"):
            assert host.run(payload) == DROPPED
    finally:
        host.close()
    (record,) = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert record.levelname == "WARNING" and "check DUCTWORK_DATABASE_URL" in record.getMessage()
    assert not effects.exists()
