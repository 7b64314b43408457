"""A scheduler stopped cleanly (SIGTERM, Ctrl-C) lets running tries finish: what they did is in
the database when it has stopped, not only in its workers' journals until the next start."""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

from sqlalchemy import Engine

from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import tasks as task_repo

FLOW = """
    import time
    from pathlib import Path
    from ductwork import Flow, PythonOperator

    def slow():
        Path({marks!r}, "started").write_text("yes")
        time.sleep(2)
        Path({marks!r}, "done").write_text("yes")

    with Flow("slow", schedule=None) as slow_flow:
        PythonOperator(task_id="work", python_callable=slow) >> PythonOperator(task_id="after", python_callable=print)
"""


def _start_and_trigger(
    tmp_path: Path, flow: str, flow_id: str, *, parallelism: int
) -> tuple[Engine, SchedulerService, threading.Thread, RunRecord, Path]:
    """A scheduler in a thread on a flows folder holding ``flow``, and run ``r1`` of ``flow_id``
    triggered and seen started (its task wrote ``marks/started``)."""
    flows, marks = tmp_path / "flows", tmp_path / "marks"
    flows.mkdir()
    marks.mkdir()
    (flows / f"{flow_id}.py").write_text(textwrap.dedent(flow.format(marks=str(marks))))
    settings = Settings(
        home=tmp_path / "home",
        flows_folder=flows,
        database_url=f"sqlite:///{tmp_path / 'd.db'}",
        parallelism=parallelism,
    )
    engine = create_engine(settings.db_url)
    migrate.upgrade(engine)
    service = SchedulerService(settings, options=SchedulerOptions(poll_interval=0.1, parse_interval=0.2))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    record = None
    while record is None and time.monotonic() < deadline:
        try:
            record = run_service.trigger(engine, flow_id, run_id="r1")
        except Exception:  # the flow is not parsed yet
            time.sleep(0.2)
    while not (marks / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if record is None or not (marks / "started").exists():
        service.stop()
        thread.join(60)
        raise AssertionError("the run was never triggered, or its try never started")
    return engine, service, thread, record, marks


def test_a_try_that_ends_while_the_scheduler_stops_is_recorded_before_it_exits(tmp_path: Path) -> None:
    engine, service, thread, record, marks = _start_and_trigger(tmp_path, FLOW, "slow", parallelism=2)
    service.stop()
    thread.join(60)
    assert not thread.is_alive()
    assert (marks / "done").exists()  # a clean stop let the try finish
    with read_transaction(engine) as conn:
        instance = task_repo.get_task_instance(conn, record.pk, "work")
        (attempt,) = task_repo.list_tries(conn, record.pk, "work")
        after = task_repo.get_task_instance(conn, record.pk, "after")
    assert instance is not None and instance.state.value == "success"
    assert attempt.state.value == "success" and attempt.end_date is not None
    # Nothing ran after the stop: "after" is left ready (scheduled) for the next scheduler.
    assert after is not None and after.state.value in ("none", "scheduled") and after.try_number == 0
    engine.dispose()


LONG_FLOW = """
    import time
    from pathlib import Path
    from ductwork import Flow, PythonOperator

    def long():
        Path({marks!r}, "started").write_text("yes")
        time.sleep(120)
        Path({marks!r}, "done").write_text("yes")

    with Flow("long", schedule=None) as long_flow:
        work = PythonOperator(task_id="work", python_callable=long, priority_weight=10)
        work >> PythonOperator(task_id="after", python_callable=print)
        PythonOperator(task_id="waiting", python_callable=print)  # behind "work" in the one slot
"""


def test_a_run_cancelled_while_the_scheduler_stops_has_its_try_stopped(tmp_path: Path) -> None:
    """A stopping scheduler waits for its running tries; it still hears of a run cancelled
    meanwhile (it waited deaf to the database until the try ended, minutes later), and starts
    nothing new while it waits."""
    engine, service, thread, record, marks = _start_and_trigger(tmp_path, LONG_FLOW, "long", parallelism=1)
    try:
        service.stop()
        time.sleep(1.0)
        assert thread.is_alive()  # still waiting for the running try
        run_service.cancel(engine, "long", "r1")
        thread.join(30)
        assert not thread.is_alive(), "the stopping scheduler did not act on the cancel"
    finally:
        service.stop()
        thread.join(60)
    assert not (marks / "done").exists()
    with read_transaction(engine) as conn:
        (attempt,) = task_repo.list_tries(conn, record.pk, "work")
        waiting = task_repo.get_task_instance(conn, record.pk, "waiting")
    assert attempt.state.value == "failed" and attempt.end_date is not None
    assert waiting is not None and waiting.state.value != "success"  # nothing started while stopping
    engine.dispose()
