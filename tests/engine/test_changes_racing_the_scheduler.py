"""Users clearing, marking and cancelling tasks of runs that a scheduler is driving at that very
moment: no change of theirs is undone by the scheduler's next step, and the scheduler keeps
going (before, it wrote the states it held over the user's, and once died handing a worker a
try that a cancelled try still held)."""

from __future__ import annotations

import itertools
import os
import random
import textwrap
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from scheduler_thread import scheduler_in_thread

from ductwork.core.states import TaskState
from ductwork.engine.scheduler import SchedulerOptions
from ductwork.errors import InvalidTransitionError
from ductwork.services import runs as run_service
from ductwork.services import tasks as task_service
from ductwork.settings import Settings
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import flows as flow_repo

FLOW = """
import time
from ductwork import Flow, PythonOperator

def work(i):
    time.sleep(0.01 + (i % 4) * 0.01)

with Flow("racer", schedule=None, max_active_runs=4) as racer:
    before = []
    for layer in range(3):
        now = [PythonOperator(task_id=f"t{layer}_{i}", python_callable=work, op_kwargs={"i": i}, retries=1)
               for i in range(4)]
        for up in before:
            up >> now
        before = now
"""

TASKS = [f"t{layer}_{i}" for layer in range(3) for i in range(4)]
MEDDLE_FOR = 5.0


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def test_clear_mark_and_cancel_while_the_scheduler_runs_the_same_runs(db_url: str, tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "racer.py").write_text(textwrap.dedent(FLOW))
    settings = Settings(home=tmp_path / "home", flows_folder=flows, database_url=db_url, parallelism=2)
    options = SchedulerOptions(poll_interval=0.1, parse_interval=0.3, wake_interval=0.02)
    engine = create_engine(db_url)
    old_env = {k: os.environ.get(k) for k in ("DUCTWORK_DATABASE_URL", "DUCTWORK_HOME")}
    os.environ.update(DUCTWORK_DATABASE_URL=db_url, DUCTWORK_HOME=str(tmp_path / "home"))
    errors: list[BaseException] = []
    run_ids: list[str] = []
    try:
        with scheduler_in_thread(settings, options):
            wait_for(lambda: _flow_known(engine), 60, "the flow to be parsed")
            stop = time.monotonic() + MEDDLE_FOR

            def trigger() -> None:
                while time.monotonic() < stop:
                    run_ids.append(run_service.trigger(engine, "racer", run_id=f"r{len(run_ids)}").run_id)
                    time.sleep(0.25)

            def meddle(seed: int) -> None:
                rnd = random.Random(seed)
                while time.monotonic() < stop:
                    time.sleep(rnd.random() * 0.03)
                    if not run_ids:
                        continue
                    record = run_service.get_run(engine, "racer", rnd.choice(run_ids[-4:]))
                    task, pick = rnd.choice(TASKS), rnd.random()
                    try:
                        if pick < 0.45:
                            task_service.clear(engine, record, [task], downstream=rnd.random() < 0.5)
                        elif pick < 0.9:
                            state = rnd.choice([TaskState.SUCCESS, TaskState.FAILED, TaskState.SKIPPED])
                            task_service.mark(engine, record, [task], state, downstream=rnd.random() < 0.3)
                        else:
                            run_service.cancel(engine, "racer", record.run_id)
                    except InvalidTransitionError:  # the run had finished: refused, as it should be
                        pass
                    except BaseException as exc:
                        errors.append(exc)

            threads = [threading.Thread(target=trigger)] + [
                threading.Thread(target=meddle, args=(seed,)) for seed in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert not errors, errors
            wait_for(lambda: not _unfinished_runs(engine), 120, "every run to finish")
        with engine.connect() as conn:
            undone = conn.execute(
                sa.text(
                    "SELECT run_pk, task_id, old, prev FROM (SELECT run_pk, task_id, old, id, LAG(new) OVER "
                    "(PARTITION BY run_pk, task_id ORDER BY id) AS prev FROM state_events WHERE task_id IS NOT NULL) e "
                    "WHERE prev IS NOT NULL AND old <> prev"
                )
            ).all()
            stranded = conn.execute(
                sa.text(
                    "SELECT r.run_id, ti.task_id, ti.state FROM task_instances ti JOIN runs r ON r.id = ti.run_pk "
                    "WHERE r.state IN ('success', 'failed') AND ti.state NOT IN "
                    "('success', 'failed', 'skipped', 'upstream_failed', 'removed')"
                )
            ).all()
    finally:
        engine.dispose()
        for key, value in old_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    assert len(run_ids) >= 5  # (one every 0.25 s for 5 s; a loaded machine triggers fewer)
    # Each task's recorded history is one chain: every change starts from the state the one
    # before it left. A break is a change that a later write went over without seeing it.
    assert not undone, f"{len(undone)} recorded changes were written over, e.g. {undone[:5]}"
    assert not stranded, f"finished runs with unfinished tasks: {stranded[:5]}"


def _flow_known(engine: sa.Engine, flow_id: str = "racer") -> bool:
    with read_transaction(engine) as conn:
        return any(f.flow_id == flow_id for f in flow_repo.list_flows(conn))


def _unfinished_runs(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT run_id FROM runs WHERE state IN ('queued', 'running')")).scalars())


ONE_TASK = """
from ductwork import Flow, PythonOperator

def work():
    return "done"

with Flow("handed", schedule=None) as handed:
    PythonOperator(task_id="only", python_callable=work)
"""


def test_a_try_queued_by_a_scheduler_that_died_is_sent_again_and_its_history_says_so(
    db_url: str, tmp_path: Path
) -> None:
    """A try handed to a worker by a scheduler killed before the worker started it: the next
    scheduler sends it again, and the task's recorded history shows the step back to scheduled
    (before, the history jumped from queued to running with nothing between)."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "handed.py").write_text(textwrap.dedent(ONE_TASK))
    settings = Settings(home=tmp_path / "home", flows_folder=flows, database_url=db_url, parallelism=1)
    options = SchedulerOptions(poll_interval=0.1, parse_interval=0.3, wake_interval=0.02)
    engine = create_engine(db_url)
    try:
        with scheduler_in_thread(settings, options):
            wait_for(lambda: _flow_known(engine, "handed"), 60, "the flow to be parsed")
        # What a scheduler killed -9 right after handing the try over leaves behind.
        record = run_service.trigger(engine, "handed", run_id="r1")
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE runs SET state = 'running' WHERE id = :pk"), {"pk": record.pk})
            conn.execute(
                sa.text("UPDATE task_instances SET state = 'queued', try_number = 1 WHERE run_pk = :pk"),
                {"pk": record.pk},
            )
            for old, new in ((None, "scheduled"), ("scheduled", "queued")):
                conn.execute(
                    sa.text(
                        "INSERT INTO state_events (run_pk, task_id, old, new, reason, try_number, at) "
                        "VALUES (:pk, 'only', :old, :new, 'test', 1, CURRENT_TIMESTAMP)"
                    ),
                    {"pk": record.pk, "old": old, "new": new},
                )
        with scheduler_in_thread(settings, options):
            wait_for(lambda: not _unfinished_runs(engine), 60, "the run to finish")
        with engine.connect() as conn:
            history = conn.execute(
                sa.text("SELECT old, new, reason, try_number FROM state_events WHERE task_id = 'only' ORDER BY id")
            ).all()
            final = conn.execute(sa.text("SELECT state, try_number FROM task_instances")).one()
    finally:
        engine.dispose()
    assert tuple(final) == ("success", 1)  # sent again under the same try number: it never started
    chain = [(old, new) for old, new, _, _ in history]
    assert chain[:3] == [(None, "scheduled"), ("scheduled", "queued"), ("queued", "scheduled")], history
    assert "sent again" in history[2].reason and history[2].try_number == 0
    assert all(prev[1] == this[0] for prev, this in itertools.pairwise(chain)), history
    assert chain[-1][1] == "success"
