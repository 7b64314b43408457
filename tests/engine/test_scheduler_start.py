"""A scheduler started on a folder of flow files parses them in batches (one child process
imports many files), and a file that hangs in a batch neither hides the others nor escapes
being reported: it becomes an import error, the files after it are parsed alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine

from ductwork.engine.executors.pool import PoolExecutor
from ductwork.engine.scheduler import EXECUTOR_START_DELAY, SchedulerOptions, SchedulerService
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import import_errors as error_repo
from ductwork.store.repo import runs as run_repo

GOOD = """
from ductwork import EmptyOperator, Flow

with Flow("listed_{i}") as flow:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""

RUNS = """
from ductwork import Flow, PythonOperator

with Flow("runs_a_task") as flow:
    PythonOperator(task_id="work", python_callable=lambda: 42)
"""


@contextmanager
def _scheduler(tmp_path: Path, flows: Path, options: SchedulerOptions) -> Iterator[tuple[Engine, threading.Thread]]:
    """A scheduler on ``flows`` and a new SQLite database, run in a thread until the block ends."""
    url = f"sqlite:///{tmp_path / 'ductwork.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    settings = Settings(home=tmp_path / "home", flows_folder=flows, database_url=url, parallelism=1)
    service = SchedulerService(settings, options=options)
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    try:
        yield engine, thread
    finally:
        service.stop()
        thread.join(timeout=60)
        engine.dispose()


def test_a_folder_of_files_is_listed_and_a_hanging_file_is_an_import_error(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    for i in range(12):
        (flows / f"f{i:02d}.py").write_text(GOOD.format(i=i))
    (flows / "f03_hangs.py").write_text("import time\ntime.sleep(600)\n")  # early in its batch
    options = SchedulerOptions(parse_timeout=4, parse_slow_after=1, schedule=False)
    with _scheduler(tmp_path, flows, options) as (engine, _):
        deadline = time.monotonic() + 60
        while True:
            with read_transaction(engine) as conn:
                listed = {f.flow_id for f in flow_repo.list_flows(conn)}
                errors = error_repo.list_import_errors(conn)
            if len(listed) == 12 and errors:
                break
            assert time.monotonic() < deadline, (sorted(listed), errors)
            time.sleep(0.1)
    assert listed == {f"listed_{i}" for i in range(12)}
    (error,) = errors
    assert error.fileloc.endswith("f03_hangs.py") and "longer than 4s" in error.error


def test_a_flow_id_in_two_files_is_an_error_of_both_until_one_file_goes(tmp_path: Path) -> None:
    """Two files that define one flow id: each file shows the clash as its import error and the
    scheduler keeps the definition it had; when one file goes, the other's is recorded, the
    errors go, and a flow whose file was deleted becomes inactive."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "one.py").write_text(GOOD.format(i="shared"))
    (flows / "two.py").write_text(GOOD.format(i="shared"))
    (flows / "lone.py").write_text(GOOD.format(i="lone"))

    def wait(engine: Engine, check, what: str):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 60
        while True:
            with read_transaction(engine) as conn:
                listed = {f.flow_id: f for f in flow_repo.list_flows(conn, active=None)}
                errors = error_repo.list_import_errors(conn)
            if check(listed, errors):
                return listed, errors
            assert time.monotonic() < deadline, (what, listed, errors)
            time.sleep(0.1)

    with _scheduler(tmp_path, flows, SchedulerOptions(schedule=False, parse_interval=0.2)) as (engine, _):
        listed, errors = wait(engine, lambda listed, errors: "listed_lone" in listed and len(errors) == 2, "the clash")
        held = listed.get("listed_shared")  # recorded from the first file parsed, if any, and kept
        assert {Path(e.fileloc).name for e in errors} == {"one.py", "two.py"}
        assert all("also defined in" in e.error for e in errors)
        (flows / "two.py").unlink()
        (flows / "lone.py").unlink()
        assert held is None or held.fileloc.endswith(("one.py", "two.py"))
        listed, errors = wait(
            engine,
            lambda listed, errors: "listed_shared" in listed and not errors and not listed["listed_lone"].is_active,
            "one.py's definition, no errors, lone.py's flow inactive",
        )
        assert listed["listed_shared"].fileloc.endswith("one.py") and listed["listed_shared"].is_active


def test_a_flow_recorded_by_a_command_meanwhile_does_not_stop_the_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ductwork trigger` records a flow it does not find; if it does so between the
    scheduler's look at the flows table and its insert, the insert meets a duplicate key. The
    scheduler records its parsed files again instead of stopping (it used to stop, leaving
    `ductwork standalone`'s runs unstarted)."""
    import sqlalchemy as sa

    from ductwork.store.tables import flows as flows_table

    real = flow_repo.record_files
    calls: list[int] = []

    def another_process_was_first(conn, parsed, present, **kwargs):  # type: ignore[no-untyped-def]
        real(conn, parsed, present, **kwargs)
        calls.append(1)
        if len(calls) == 1:  # the first time: the same flow id inserted again, as the race does
            row = conn.execute(sa.select(flows_table).where(flows_table.c.flow_id == "listed_0")).mappings().one()
            conn.execute(sa.insert(flows_table).values(**row))

    monkeypatch.setattr(flow_repo, "record_files", another_process_was_first)
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "f.py").write_text(GOOD.format(i=0))
    with _scheduler(tmp_path, flows, SchedulerOptions(schedule=False)) as (engine, thread):
        deadline = time.monotonic() + 60
        while True:
            with read_transaction(engine) as conn:
                listed = {f.flow_id for f in flow_repo.list_flows(conn)}
            if listed == {"listed_0"}:
                break
            assert thread.is_alive(), "the scheduler stopped"
            assert time.monotonic() < deadline, listed
            time.sleep(0.1)
        assert len(calls) >= 2 and thread.is_alive()


def _turn_until(service: SchedulerService, done: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "timed out"
        service.turn()


def _listed(engine: Engine) -> set[str]:
    with read_transaction(engine) as conn:
        return {f.flow_id for f in flow_repo.list_flows(conn)}


@contextmanager
def _service(tmp_path: Path, flows: Path, options: SchedulerOptions) -> Iterator[tuple[SchedulerService, Engine]]:
    """A scheduler whose turns the test takes itself, on ``flows`` and a new SQLite database."""
    url = f"sqlite:///{tmp_path / 'ductwork.db'}"
    engine = create_engine(url)
    settings = Settings(home=tmp_path / "home", flows_folder=flows, database_url=url, parallelism=1)
    service = SchedulerService(settings, options=options)
    try:
        service.start()
        yield service, engine
    finally:
        service.shutdown()
        engine.dispose()


def _workers(service: SchedulerService) -> list[int]:
    assert isinstance(service.executor, PoolExecutor)
    return service.executor.worker_pids()


def test_the_workers_start_once_a_folder_of_files_is_parsed(tmp_path: Path) -> None:
    """Booting the workers while the first batches import takes the same cores: they start in
    the turn that records the batches, not at the scheduler's start."""
    flows = tmp_path / "flows"
    flows.mkdir()
    for i in range(8):
        (flows / f"f{i}.py").write_text(GOOD.format(i=i))
    with _service(tmp_path, flows, SchedulerOptions(schedule=False)) as (service, engine):
        assert _workers(service) == []
        _turn_until(service, lambda: len(_listed(engine)) == 8)
        assert _workers(service)


def test_the_workers_start_at_the_latest_a_second_after_the_scheduler(tmp_path: Path) -> None:
    """A batch that hangs does not keep the workers from starting."""
    flows = tmp_path / "flows"
    flows.mkdir()
    for i in range(6):
        (flows / f"f{i}.py").write_text(GOOD.format(i=i))
    (flows / "f0_hangs.py").write_text("import time\ntime.sleep(600)\n")
    options = SchedulerOptions(schedule=False, parse_timeout=30, parse_slow_after=20)
    with _service(tmp_path, flows, options) as (service, _):
        started = time.monotonic()
        _turn_until(service, lambda: bool(_workers(service)), timeout=20)
        assert service._batched, "the hanging batch is still being parsed"
        assert time.monotonic() - started >= EXECUTOR_START_DELAY - 0.2


def test_a_try_before_the_workers_started_starts_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run queued while a batch still imports (the workers not started yet) runs at once."""
    monkeypatch.setattr("ductwork.engine.scheduler.EXECUTOR_START_DELAY", 600.0)
    flows = tmp_path / "flows"
    flows.mkdir()
    for i in range(7):
        (flows / f"f{i}.py").write_text(GOOD.format(i=i))
    (flows / "f7.py").write_text(RUNS)  # in the second batch
    (flows / "f0_hangs.py").write_text("import time\ntime.sleep(600)\n")  # in the first batch
    options = SchedulerOptions(schedule=False, parse_timeout=60, parse_slow_after=50)
    with _service(tmp_path, flows, options) as (service, engine):
        _turn_until(service, lambda: "runs_a_task" in _listed(engine))
        assert _workers(service) == [] and service._batched
        run = run_service.trigger(engine, "runs_a_task")
        _turn_until(service, lambda: _run_state(engine, run.run_id) == "success")


def _run_state(engine: Engine, run_id: str) -> str | None:
    with read_transaction(engine) as conn:
        found = run_repo.get_run(conn, "runs_a_task", run_id)
    return found.state.value if found else None


def test_a_stop_asked_for_while_starting_is_not_followed_by_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGTERM as the scheduler starts (a supervisor's restart, Ctrl-C just after the command):
    its log said "stopping" and then "scheduler started", as if it had gone on running."""
    url = f"sqlite:///{tmp_path / 'ductwork.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    (tmp_path / "flows").mkdir()
    settings = Settings(home=tmp_path / "home", flows_folder=tmp_path / "flows", database_url=url, parallelism=1)
    service = SchedulerService(settings, options=SchedulerOptions())
    service.stop()  # what the signal handler does, before the loop is reached
    caplog.set_level("INFO", logger="ductwork.scheduler")
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    engine.dispose()
    assert not thread.is_alive(), "the scheduler did not stop"
    said = [r.getMessage() for r in caplog.records if r.name == "ductwork.scheduler"]
    started = [m for m in said if m.startswith("scheduler started")]
    assert started and all("stops at once" in m for m in started), said
