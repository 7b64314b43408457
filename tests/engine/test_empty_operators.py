"""An ``EmptyOperator`` with nothing attached is not handed to a worker (as in Airflow): when it
is ready, the engine records a try that succeeded, and its downstream tasks go on at once. One
with a callback, assets, or a subclass's own ``execute`` runs like any other task."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ductwork import EmptyOperator, Flow, PythonOperator
from ductwork.core.graph import RUNS_NOTHING
from ductwork.engine.local import run_locally
from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.errors import NotFoundError
from ductwork.services import runs as run_service
from ductwork.services import tasks as task_service
from ductwork.settings import Settings
from ductwork.store.engine import read_transaction
from ductwork.store.records import RunRecord
from ductwork.store.repo import events as event_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from tests.engine.scheduler_thread import scheduler_in_thread

FLOW = """
    from pathlib import Path
    from ductwork import EmptyOperator, Flow, PythonOperator

    MARKS = Path({marks!r})

    def mark(name):
        with open(MARKS / name, "a") as fh:
            fh.write("x")

    def called_back(context):
        mark("callback_" + context["ti"].task_id)

    class Marker(EmptyOperator):
        def execute(self, context):
            mark("own_execute")

    with Flow("joins", schedule=None) as joins:
        start = EmptyOperator(task_id="start")
        work = [PythonOperator(task_id=f"work{{i}}", python_callable=mark, op_args=[f"work{{i}}"]) for i in range(3)]
        join = EmptyOperator(task_id="join")
        told = EmptyOperator(task_id="told", on_success_callback=called_back)
        own = Marker(task_id="own")
        end = EmptyOperator(task_id="end")
        start >> work >> join >> told >> own >> end
"""


def test_only_empty_operators_with_nothing_attached_skip_the_worker() -> None:
    def callback(context: Any) -> None:
        return None

    class Own(EmptyOperator):
        def execute(self, context: Any) -> Any:
            return 1

    with Flow("flags") as flow:
        EmptyOperator(task_id="plain")
        EmptyOperator(task_id="with_callback", on_execute_callback=callback)
        EmptyOperator(task_id="with_outlet", outlets=["s3://bucket/table"])
        EmptyOperator(task_id="cached", cache="content")
        Own(task_id="own")
        PythonOperator(task_id="python", python_callable=lambda: None)
    nodes = flow.to_graph().nodes
    assert {t for t, node in nodes.items() if node.extra.get(RUNS_NOTHING)} == {"plain"}


def test_an_in_process_run_records_empty_operators_as_succeeded_and_runs_the_rest(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(FLOW.format(marks=str(marks))), namespace)
    summary = run_locally(namespace["joins"], log_dir=tmp_path / "logs")
    assert summary.state.value == "success"
    assert {t: s.state.value for t, s in summary.tasks.items()} == dict.fromkeys(
        ["start", "work0", "work1", "work2", "join", "told", "own", "end"], "success"
    )
    assert sorted(p.name for p in marks.iterdir()) == ["callback_told", "own_execute", "work0", "work1", "work2"]
    assert all((marks / name).read_text() == "x" for name in ("work0", "own_execute", "callback_told"))
    for task_id in ("start", "join", "end"):
        (attempt,) = summary.tasks[task_id].tries
        assert attempt.state.value == "success" and attempt.log_path is None
    for task_id in ("work0", "told", "own"):
        (attempt,) = summary.tasks[task_id].tries
        assert attempt.log_path is not None


def _run_to_its_end(service: SchedulerService, flow_id: str) -> RunRecord:
    """Trigger a run of ``flow_id`` once the scheduler has parsed it; the run, once it succeeded."""
    deadline = time.monotonic() + 60
    while True:
        try:
            record = run_service.trigger(service.engine, flow_id, run_id="r1")
            break
        except NotFoundError:  # not parsed yet
            assert time.monotonic() < deadline, "the flow was never parsed"
            time.sleep(0.1)
    while True:
        with read_transaction(service.engine) as conn:
            run = run_repo.get_run(conn, flow_id, "r1")
        assert run is not None
        if run.state.value in ("success", "failed"):
            break
        assert time.monotonic() < deadline, f"the run did not end: {run.state}"
        time.sleep(0.1)
    assert run.state.value == "success"
    return record


@pytest.fixture
def scheduler(tmp_path: Path) -> Iterator[tuple[SchedulerService, Path]]:
    flows = tmp_path / "flows"
    flows.mkdir()
    marks = tmp_path / "marks"
    marks.mkdir()
    (flows / "joins.py").write_text(textwrap.dedent(FLOW.format(marks=str(marks))))
    settings = Settings(
        home=tmp_path / "home", flows_folder=flows, database_url=f"sqlite:///{tmp_path / 'd.db'}", parallelism=2
    )
    with scheduler_in_thread(settings, SchedulerOptions(poll_interval=0.1, parse_interval=0.2)) as service:
        yield service, marks


def test_under_the_scheduler_empty_operators_take_no_worker_and_say_why_they_have_no_log(
    scheduler: tuple[SchedulerService, Path],
) -> None:
    service, marks = scheduler
    record = _run_to_its_end(service, "joins")
    assert sorted(p.name for p in marks.iterdir()) == ["callback_told", "own_execute", "work0", "work1", "work2"]
    with read_transaction(service.engine) as conn:
        for task_id in ("start", "join", "end"):
            (attempt,) = task_repo.list_tries(conn, record.pk, task_id)
            assert attempt.state.value == "success"
            assert attempt.log_path is None
            assert attempt.start_date is not None and attempt.start_date == attempt.end_date
            instance = task_repo.get_task_instance(conn, record.pk, task_id)
            assert instance is not None and instance.state.value == "success" and instance.try_number == 1
        history = event_repo.list_state_events(conn, record.pk, task_id="join")
        assert [(e.new, e.reason) for e in history][-3:] == [
            ("queued", "nothing to run"),
            ("running", "started"),
            ("success", ""),
        ]
        (worked,) = task_repo.list_tries(conn, record.pk, "work0")
        assert worked.log_path
    with pytest.raises(NotFoundError, match="'join' is an EmptyOperator with nothing to run"):
        task_service.logged_try(service.engine, record, "join", None)


SLOT_FLOW = """
    import time
    from ductwork import EmptyOperator, Flow, PythonOperator

    def slow():
        time.sleep(1.5)

    with Flow("busy", schedule=None, max_active_tasks=1) as busy:
        PythonOperator(task_id="slow", python_callable=slow, priority_weight=10)
        EmptyOperator(task_id="marker") >> EmptyOperator(task_id="after_marker")
"""


def test_empty_operators_take_no_slot_of_their_flows_active_tasks(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "busy.py").write_text(textwrap.dedent(SLOT_FLOW))
    settings = Settings(
        home=tmp_path / "home", flows_folder=flows, database_url=f"sqlite:///{tmp_path / 'd.db'}", parallelism=1
    )
    with scheduler_in_thread(settings, SchedulerOptions(poll_interval=0.1, parse_interval=0.2)) as service:
        record = _run_to_its_end(service, "busy")
        with read_transaction(service.engine) as conn:
            (slow,) = task_repo.list_tries(conn, record.pk, "slow")
            (after,) = task_repo.list_tries(conn, record.pk, "after_marker")
    # The flow's one active task was "slow" (dispatched first, by its priority) for 1.5 s; the
    # markers took no slot of it.
    assert slow.start_date is not None and slow.end_date is not None and after.end_date is not None
    assert after.end_date < slow.end_date
