"""A remote worker's guarded writes of its tries (``store.repo.remote``), on every backend.

PostgreSQL does each step and its try row in one statement, the others in two: both must keep
the same contract (a redelivered start or a second end is refused and says what it found)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Engine
from store_helpers import T0, at, create_run, graph, queue_task

from ductwork.core.events import TryOutcome
from ductwork.core.graph import NodeSpec
from ductwork.core.states import TaskState
from ductwork.engine.journal import encode_outcome
from ductwork.store.engine import create_engine, single_statement, transaction
from ductwork.store.repo import remote, tasks

S = TaskState


def _end(conn: Connection, run_pk: int, outcome: TryOutcome, **kwargs: object) -> remote.Found | None:
    return remote.end_try(conn, run_pk, "a", 1, outcome, encode_outcome(outcome), **kwargs)  # type: ignore[arg-type]


def test_a_start_applies_once_and_writes_the_try_row(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        not_queued = remote.start_try(conn, run.pk, "a", 1, worker="w1", pid=7, at=at(1), log_path=None)
        queue_task(conn, db_engine, run.key, "a")
        applied = remote.start_try(conn, run.pk, "a", 1, worker="w1", pid=7, at=at(1), log_path="s3://logs/a.1")
        redelivered = remote.start_try(conn, run.pk, "a", 1, worker="w2", pid=8, at=at(2), log_path=None)
        ti = tasks.get_task_instance(conn, run.pk, "a")
        (attempt,) = tasks.list_tries(conn, run.pk, "a")
    assert not_queued == remote.Found(S.NONE, 0, None)
    assert applied is None
    assert redelivered == remote.Found(S.RUNNING, 1, "w1")  # the first worker keeps it
    assert ti is not None and (ti.state, ti.start_date, ti.hostname, ti.pid) == (S.RUNNING, at(1), "w1", 7)
    assert (attempt.try_number, attempt.state, attempt.start_date, attempt.hostname, attempt.pid) == (
        1,
        S.RUNNING,
        at(1),
        "w1",
        7,
    )
    assert attempt.log_path == "s3://logs/a.1"


def test_an_end_applies_once_and_keeps_the_whole_outcome(db_engine: Engine) -> None:
    outcome = TryOutcome(S.FAILED, at(1), at(3), error="boom", traceback="Traceback ...", rendered={"sql": "x"})
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        queue_task(conn, db_engine, run.key, "a")
        remote.start_try(conn, run.pk, "a", 1, worker="w1", pid=7, at=at(1), log_path="/l/a.1.log")
        applied = _end(conn, run.pk, outcome)
        again = _end(conn, run.pk, outcome)
        ti = tasks.get_task_instance(conn, run.pk, "a")
        (attempt,) = tasks.list_tries(conn, run.pk, "a")
        views = remote.view_tries(conn, [(run.pk, "a", 1)])
    assert (applied, again) == (None, remote.Found(S.FAILED, 1, "w1"))
    assert ti is not None and (ti.state, ti.end_date, ti.duration) == (S.FAILED, at(3), 120.0)
    assert (attempt.state, attempt.start_date, attempt.end_date, attempt.error) == (S.FAILED, at(1), at(3), "boom")
    assert attempt.hostname == "w1" and attempt.log_path == "/l/a.1.log"  # the start's, kept
    assert views[(run.pk, "a", 1)].outcome == encode_outcome(outcome)


def test_a_reschedule_gives_the_try_number_back_but_keeps_its_row(db_engine: Engine) -> None:
    later = at(10)
    outcome = TryOutcome(S.UP_FOR_RESCHEDULE, at(1), at(2), next_try_at=later)
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        queue_task(conn, db_engine, run.key, "a")
        remote.start_try(conn, run.pk, "a", 1, worker="w1", pid=7, at=at(1), log_path=None)
        applied = _end(conn, run.pk, outcome)
        ti = tasks.get_task_instance(conn, run.pk, "a")
        (attempt,) = tasks.list_tries(conn, run.pk, "a")
    assert applied is None
    assert ti is not None and (ti.state, ti.try_number, ti.next_try_at) == (S.UP_FOR_RESCHEDULE, 0, later)
    assert (attempt.try_number, attempt.state) == (1, S.UP_FOR_RESCHEDULE)


def test_a_scheduler_declares_a_queued_try_lost_through_the_same_guard(db_engine: Engine) -> None:
    lost = TryOutcome(S.FAILED, at(1), at(1), error="worker lost")
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        queue_task(conn, db_engine, run.key, "a")
        declared = _end(conn, run.pk, lost, worker="sched", pid=1, expected=(S.QUEUED, S.RUNNING))
        started_after = remote.start_try(conn, run.pk, "a", 1, worker="w1", pid=7, at=at(2), log_path=None)
        (attempt,) = tasks.list_tries(conn, run.pk, "a")
    assert declared is None
    assert started_after == remote.Found(S.FAILED, 1, None)  # the late message runs nothing
    assert (attempt.state, attempt.error, attempt.hostname) == (S.FAILED, "worker lost", "sched")


def test_an_end_that_maps_a_task_grows_the_run_with_its_new_nodes(db_engine: Engine) -> None:
    new = (NodeSpec("a[0]", ("a",)), NodeSpec("a[1]", ("a",)))
    outcome = TryOutcome(S.SUCCESS, at(1), at(2), new_nodes=new)
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        queue_task(conn, db_engine, run.key, "a")
        remote.start_try(conn, run.pk, "a", 1, worker="w1", pid=7, at=at(1), log_path=None)
        assert _end(conn, run.pk, outcome) is None
        grown = {t.task_id: t.state for t in tasks.list_task_instances(conn, run.pk)}
    assert grown["a"] == S.SUCCESS and {"a[0]", "a[1]"} <= set(grown)


def test_ends_of_a_run_that_was_deleted_find_nothing(db_engine: Engine) -> None:
    outcome = TryOutcome(S.SUCCESS, at(1), at(2))
    with transaction(db_engine) as conn:
        found = remote.end_try(conn, 987654, "a", 1, outcome, encode_outcome(outcome))
        started = remote.start_try(conn, 987654, "a", 1, worker="w", pid=1, at=T0 + dt.timedelta(1), log_path=None)
    assert found == started == remote.Found(None, 0, None)


def test_an_end_and_the_next_start_are_recorded_together_once(db_engine: Engine) -> None:
    """As a worker writes them: one statement on an autocommit engine (PostgreSQL), a
    transaction elsewhere."""
    statements = create_engine(db_engine.url.render_as_string(hide_password=False), autocommit=True)
    outcome = TryOutcome(S.SUCCESS, at(1), at(2))
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        queue_task(conn, db_engine, run.key, "a")
        queue_task(conn, db_engine, run.key, "b")
        remote.start_try(conn, run.pk, "a", 1, worker="w1", pid=7, at=at(1), log_path=None)
    end = remote.TryEnd(run.pk, "a", 1, outcome, encode_outcome(outcome))
    start = remote.TryStart(run.pk, "b", 1, "w1", 7, at(2), "/l/b.1.log")
    single = remote.one_statement(db_engine.dialect.name, end, start)
    assert single == (db_engine.dialect.name == "postgresql")
    try:
        with single_statement(statements) if single else transaction(db_engine) as conn:
            first = remote.record_steps(conn, end, start)
        with single_statement(statements) if single else transaction(db_engine) as conn:
            again = remote.record_steps(conn, end, start)  # a redelivered batch: both refused
    finally:
        statements.dispose()
    with transaction(db_engine) as conn:
        states = {t.task_id: t.state for t in tasks.list_task_instances(conn, run.pk, task_ids=["a", "b"])}
        rows = {t.task_id: (t.state, t.log_path) for t in tasks.list_tries(conn, run.pk)}
    assert first == (None, None)
    assert again == (remote.Found(S.SUCCESS, 1, "w1"), remote.Found(S.RUNNING, 1, "w1"))
    assert states == {"a": S.SUCCESS, "b": S.RUNNING}
    assert rows == {"a": (S.SUCCESS, None), "b": (S.RUNNING, "/l/b.1.log")}


def test_a_refused_end_does_not_stop_the_next_start(db_engine: Engine) -> None:
    """The scheduler declared the previous try lost meanwhile: its end is refused, the next
    try still starts."""
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        queue_task(conn, db_engine, run.key, "a")
        queue_task(conn, db_engine, run.key, "b")
        remote.start_try(conn, run.pk, "a", 1, worker="w1", pid=7, at=at(1), log_path=None)
        lost = TryOutcome(S.FAILED, at(1), at(3), error="worker lost")
        assert _end(conn, run.pk, lost, worker="sched", pid=1) is None
    late = TryOutcome(S.SUCCESS, at(1), at(2))
    end = remote.TryEnd(run.pk, "a", 1, late, encode_outcome(late))
    start = remote.TryStart(run.pk, "b", 1, "w1", 7, at(4), None)
    with single_statement(db_engine) as conn:
        found = remote.record_steps(conn, end, start)
    with transaction(db_engine) as conn:
        (attempt,) = tasks.list_tries(conn, run.pk, "a")
        b = tasks.get_task_instance(conn, run.pk, "b")
    assert found == (remote.Found(S.FAILED, 1, "w1"), None)
    assert (attempt.state, attempt.error) == (S.FAILED, "worker lost")  # the late end changed nothing
    assert b is not None and b.state == S.RUNNING


def test_a_try_declared_lost_keeps_its_real_start(db_engine: Engine) -> None:
    """The scheduler (or the worker's main process) declares a try lost long after it started:
    the view gives the start, so the recorded try spans its real run, not zero seconds."""
    from ductwork.core.clock import FrozenClock
    from ductwork.engine.executors._worker import failed_outcome

    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        queue_task(conn, db_engine, run.key, "a")
        remote.start_try(conn, run.pk, "a", 1, worker="w1", pid=7, at=at(1), log_path=None)
        view = remote.view_tries(conn, [(run.pk, "a", 1)])[(run.pk, "a", 1)]
        assert view.start_date == at(1)
        lost = failed_outcome(NodeSpec("a"), 1, FrozenClock(at(4)), "worker lost", started_at=view.start_date)
        assert remote.end_try(conn, run.pk, "a", 1, lost, encode_outcome(lost)) is None
        (attempt,) = tasks.list_tries(conn, run.pk, "a")
    assert (attempt.start_date, attempt.end_date, attempt.duration) == (at(1), at(4), 180.0)
