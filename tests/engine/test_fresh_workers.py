"""worker_mode = "fresh": the scheduler runs every try in a new process; the pool settings."""

from __future__ import annotations

import os
import textwrap
import threading
import time
from pathlib import Path

import pytest

from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.errors import DefinitionError
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import read_transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.results import SqlResults

FLOW = textwrap.dedent(
    """
    import os
    from ductwork import Flow, PythonOperator

    with Flow("pids", schedule=None) as pids:
        for i in range(3):
            PythonOperator(task_id=f"t{i}", python_callable=os.getpid)
    """
)


def test_every_try_gets_its_own_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "pids.py").write_text(FLOW)
    settings = Settings.load(
        environ={
            "DUCTWORK_HOME": str(tmp_path / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_WORKER_MODE": "fresh",
            "DUCTWORK_PARALLELISM": "1",
        }
    )
    assert settings.worker_mode == "fresh"
    service = SchedulerService(settings, options=SchedulerOptions(poll_interval=0.2, parse_interval=0.3))
    migrate.upgrade(service.engine)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            with read_transaction(service.engine) as conn:
                if flow_repo.get_flow(conn, "pids") is not None:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        record = run_service.trigger(service.engine, "pids", run_id="r")
        while True:
            with read_transaction(service.engine) as conn:
                current = run_repo.get_run_by_pk(conn, record.pk)
            assert current is not None
            if current.state.is_terminal:
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        results = SqlResults(service.engine)
        pids = {results.pull(record.key, f"t{i}") for i in range(3)}
    finally:
        service.stop()
        thread.join(timeout=60)
    assert current.state == "success"
    assert len(pids) == 3 and os.getpid() not in pids


def test_worker_prefetch_is_a_setting_with_a_clear_error() -> None:
    assert Settings.load(environ={}).worker_prefetch == 8
    settings = Settings.load(environ={"DUCTWORK_WORKER_PREFETCH": "1"})
    assert settings.worker_prefetch == 1
    assert ("worker_prefetch", "1", "env") in settings.describe()
    with pytest.raises(DefinitionError, match="worker_prefetch must be at least 1, got 0"):
        Settings.load(environ={"DUCTWORK_WORKER_PREFETCH": "0"})
    with pytest.raises(DefinitionError, match="worker_prefetch must be an integer, got 'many'"):
        Settings.load(environ={"DUCTWORK_WORKER_PREFETCH": "many"})
