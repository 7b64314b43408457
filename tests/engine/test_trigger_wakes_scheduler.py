"""A triggered run starts without waiting for the scheduler's next poll.

``ductwork trigger`` and the REST API only write the run; the scheduler looks cheaply (the
largest run id) every ``wake_interval`` between its polls and polls at once when a run appeared.
Here the poll comes once a minute: runs that finish in seconds were picked up by that look.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.loading import load_file
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo

FLOW = """
from ductwork import EmptyOperator, Flow

with Flow("woken") as flow:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""


@pytest.fixture
def scheduler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "woken.py").write_text(FLOW)
    url = f"sqlite:///{tmp_path / 'ductwork.db'}"
    monkeypatch.setenv("DUCTWORK_DATABASE_URL", url)  # the workers inherit it
    engine = create_engine(url)
    migrate.upgrade(engine)
    (flow,) = load_file(flows / "woken.py").flows
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, flow.to_graph(), fileloc=str(flows / "woken.py"))
    engine.dispose()
    settings = Settings(home=tmp_path / "home", flows_folder=flows, database_url=url, parallelism=1)
    service = SchedulerService(settings, options=SchedulerOptions(poll_interval=60, parse=False, schedule=False))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    time.sleep(0.5)  # past its first poll, which comes at once
    try:
        yield url
    finally:
        service.stop()
        thread.join(timeout=60)


def _finished_within(engine: object, run_pk: int, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with read_transaction(engine) as conn:  # type: ignore[arg-type]
            record = run_repo.get_run_by_pk(conn, run_pk)
        assert record is not None
        if record.state.is_terminal:
            return record.state.value
        time.sleep(0.05)
    return "still " + record.state.value


def test_triggered_runs_start_before_the_next_poll(scheduler: str) -> None:
    engine = create_engine(scheduler)
    try:
        for run_id in ("first", "second"):
            record = run_service.trigger(engine, "woken", run_id=run_id)
            assert _finished_within(engine, record.pk, 30) == "success", run_id
    finally:
        engine.dispose()
