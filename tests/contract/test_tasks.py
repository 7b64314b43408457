"""Task instances: reads, the worker's guarded try writes, heartbeat, clear and mark."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Connection, Engine
from store_helpers import at, create_run, graph, queue_task

from ductwork.core.graph import NodeSpec
from ductwork.core.states import RunState, TaskState
from ductwork.engine.execution import TryOutcome
from ductwork.errors import InvalidTransitionError, NotFoundError
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import events, results, runs, tasks

S = TaskState


def test_reading_task_instances(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph(), states={"a": S.SUCCESS, "e": S.FAILED})
        assert [t.task_id for t in tasks.list_task_instances(conn, run.pk, states=[S.SUCCESS, S.FAILED])] == ["a", "e"]
        assert [t.task_id for t in tasks.list_task_instances(conn, run.pk, task_ids=["d", "b", "zz"])] == ["d", "b"]
        assert tasks.task_states(conn, run.pk)["e"] == S.FAILED
        d = tasks.get_task_instance(conn, run.pk, "d")
        assert d is not None and d.upstream == ("b", "c") and d.state == S.NONE
        assert tasks.get_task_instance(conn, run.pk, "zz") is None
        assert tasks.list_task_instances(conn, 123456) == []


def test_try_started_applies_once_and_only_to_the_expected_try(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        assert not tasks.try_started(conn, run.pk, "a", 1, hostname="w1", pid=7, at=at(1))  # not queued yet
        queue_task(conn, db_engine, run.key, "a")
        assert not tasks.try_started(conn, run.pk, "a", 2, hostname="w1", pid=7, at=at(1))  # wrong try
        assert tasks.try_started(conn, run.pk, "a", 1, hostname="w1", pid=7, at=at(1), log_path="/logs/a/1.log")
        assert not tasks.try_started(conn, run.pk, "a", 1, hostname="w2", pid=8, at=at(2))  # already running
        ti = tasks.get_task_instance(conn, run.pk, "a")
        (attempt,) = tasks.list_tries(conn, run.pk, "a")
        log = events.list_state_events(conn, run.pk, task_id="a")
        with pytest.raises(NotFoundError, match="'zz'"):
            tasks.try_started(conn, run.pk, "zz", 1)
    assert ti is not None
    assert (ti.state, ti.try_number, ti.start_date, ti.hostname, ti.pid, ti.heartbeat_at) == (
        S.RUNNING,
        1,
        at(1),
        "w1",
        7,
        at(1),
    )
    assert (attempt.state, attempt.start_date, attempt.hostname, attempt.pid, attempt.log_path) == (
        S.RUNNING,
        at(1),
        "w1",
        7,
        "/logs/a/1.log",
    )
    assert [(e.old, e.new) for e in log] == [("none", "scheduled"), ("scheduled", "queued"), ("queued", "running")]


def test_try_finished_records_the_outcome(db_engine: Engine) -> None:
    failure = TryOutcome(
        S.UP_FOR_RETRY,
        at(1),
        at(2),
        error="ValueError: bad",
        traceback="Traceback...",
        next_try_at=at(7),
        rendered={"sql": "select 1", "when": dt.date(2024, 1, 1)},
    )
    with transaction(db_engine) as conn:
        run = create_run(conn, graph(retries=1))
        queue_task(conn, db_engine, run.key, "a")
        assert tasks.try_started(conn, run.pk, "a", 1, hostname="w1", pid=7, at=at(1))
        assert not tasks.try_finished(conn, run.pk, "a", 2, failure)  # a stale or future try changes nothing
        assert tasks.try_finished(conn, run.pk, "a", 1, failure, hostname="w1", pid=7)
        assert not tasks.try_finished(conn, run.pk, "a", 1, failure)  # recorded already
        ti = tasks.get_task_instance(conn, run.pk, "a")
        (attempt,) = tasks.list_tries(conn, run.pk, "a")
        last = events.list_state_events(conn, run.pk, task_id="a")[-1]
    assert ti is not None
    assert (ti.state, ti.start_date, ti.end_date, ti.duration, ti.next_try_at) == (
        S.UP_FOR_RETRY,
        at(1),
        at(2),
        60.0,
        at(7),
    )
    assert (attempt.state, attempt.start_date, attempt.end_date, attempt.duration) == (
        S.UP_FOR_RETRY,
        at(1),
        at(2),
        60.0,
    )
    assert (attempt.error, attempt.traceback, attempt.hostname) == ("ValueError: bad", "Traceback...", "w1")
    assert attempt.rendered == {"sql": "select 1", "when": dt.date(2024, 1, 1)}
    assert (last.old, last.new, last.reason, last.try_number) == ("running", "up_for_retry", "ValueError: bad", 1)


def test_try_finished_without_a_recorded_start(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        queue_task(conn, db_engine, run.key, "e")
        assert tasks.try_finished(conn, run.pk, "e", 1, TryOutcome(S.SUCCESS, at(1), at(1.5)))
        ti = tasks.get_task_instance(conn, run.pk, "e")
        (attempt,) = tasks.list_tries(conn, run.pk, "e")
    assert ti is not None and (ti.state, ti.start_date, ti.end_date, ti.duration) == (S.SUCCESS, at(1), at(1.5), 30.0)
    assert (attempt.state, attempt.start_date, attempt.error) == (S.SUCCESS, at(1), None)


def test_dynamic_dependencies_and_reschedules_do_not_use_up_a_try(db_engine: Engine) -> None:
    grown = (NodeSpec("part"), NodeSpec("b", ("a", "part")))
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        queue_task(conn, db_engine, run.key, "b")
        tasks.try_started(conn, run.pk, "b", 1, at=at(1))
        assert tasks.try_finished(conn, run.pk, "b", 1, TryOutcome(S.NONE, at(1), at(2), new_nodes=grown))
        queue_task(conn, db_engine, run.key, "c")
        tasks.try_started(conn, run.pk, "c", 1, at=at(1))
        assert tasks.try_finished(
            conn, run.pk, "c", 1, TryOutcome(S.UP_FOR_RESCHEDULE, at(1), at(2), next_try_at=at(9))
        )
        loaded = runs.load_run_graph(conn, run.pk)
    assert loaded.graph.nodes["b"].upstream == ("a", "part")
    assert loaded.states["part"] == S.NONE and loaded.states["b"] == S.NONE
    assert loaded.tries["b"] == 0 and loaded.tries["c"] == 0
    assert loaded.states["c"] == S.UP_FOR_RESCHEDULE


def test_heartbeat_only_for_the_running_try(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        assert not tasks.heartbeat(conn, run.pk, "a", 1, at=at(1))
        queue_task(conn, db_engine, run.key, "a")
        tasks.try_started(conn, run.pk, "a", 1, at=at(1))
        assert tasks.heartbeat(conn, run.pk, "a", 1, at=at(3))
        assert not tasks.heartbeat(conn, run.pk, "a", 2, at=at(4))
        ti = tasks.get_task_instance(conn, run.pk, "a")
    assert ti is not None and ti.heartbeat_at == at(3)


def _finished_diamond(conn: Connection) -> int:
    run = create_run(conn, graph(retries=2), tries={"a": 1, "b": 2, "c": 1, "d": 1, "e": 1})
    tasks.mark_task_instances(conn, run.pk, ["a", "b", "c", "d", "e"], S.SUCCESS, now=at(1))
    for task_id in ("a", "b", "d", "e"):
        results.put_result(conn, run.pk, task_id, "return_value", b"1", serializer="json")
    runs.set_run_state(conn, run.pk, RunState.SUCCESS, at=at(2))
    return run.pk


def test_clear_with_downstream_closure(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        pk = _finished_diamond(conn)
        cleared = tasks.clear_task_instances(conn, pk, ["b"], downstream=True, now=at(3))
        states = tasks.task_states(conn, pk)
        kept = {r.task_id for r in results.list_results(conn, pk)}
        b = tasks.get_task_instance(conn, pk, "b")
        run = runs.get_run_by_pk(conn, pk)
        log = [(e.task_id, e.old, e.new) for e in events.list_state_events(conn, pk) if e.at == at(3)]
    assert cleared == ["b", "d"]
    assert states == {"a": S.SUCCESS, "b": S.NONE, "c": S.SUCCESS, "d": S.NONE, "e": S.SUCCESS}
    assert kept == {"a", "e"}
    assert b is not None and (b.try_number, b.max_tries, b.end_date) == (2, 5, None)  # three more tries
    assert run is not None and (run.state, run.end_date) == (RunState.QUEUED, None)
    assert log == [("b", "success", "none"), ("d", "success", "none"), (None, "success", "queued")]


def test_clear_with_upstream_closure_and_without_requeue(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        pk = _finished_diamond(conn)
        assert tasks.clear_task_instances(conn, pk, ["d"], upstream=True, requeue_run=False) == ["a", "b", "c", "d"]
        assert tasks.task_states(conn, pk)["e"] == S.SUCCESS
        run = runs.get_run_by_pk(conn, pk)
        assert run is not None and run.state == RunState.SUCCESS
        assert tasks.clear_task_instances(conn, pk, ["c"], upstream=True, downstream=True) == ["a", "c", "d"]
        assert tasks.clear_task_instances(conn, pk, []) == []
        with pytest.raises(NotFoundError, match="'zz'"):
            tasks.clear_task_instances(conn, pk, ["zz"])


def test_mark_failed_with_downstream_and_refuse_other_states(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph(), states={"d": S.FAILED})
        changed = tasks.mark_task_instances(conn, run.pk, ["b"], S.FAILED, downstream=True, now=at(4))
        assert changed == ["b"]  # d is failed already
        assert tasks.mark_task_instances(conn, run.pk, ["a"], S.SKIPPED, upstream=True) == ["a"]
        ti = tasks.get_task_instance(conn, run.pk, "b")
        assert ti is not None and (ti.state, ti.end_date) == (S.FAILED, at(4))
        last = events.list_state_events(conn, run.pk, task_id="b")[-1]
        assert (last.old, last.new, last.reason) == ("none", "failed", "marked failed")
        for bad in (S.RUNNING, S.NONE):
            with pytest.raises(InvalidTransitionError, match=f"cannot mark tasks {bad.value}"):
                tasks.mark_task_instances(conn, run.pk, ["a"], bad)


def test_replay_records_a_journaled_try_the_database_never_saw(db_engine: Engine) -> None:
    from ductwork.core.events import TryOutcome

    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        # The scheduler never recorded "queued" for try 1 of a (it crashed first); the journal has it.
        assert tasks.replay_try(conn, run.pk, "a", 1, outcome=None, pid=9, at=at(1))
        assert tasks.get_task_instance(conn, run.pk, "a").state == TaskState.RUNNING  # type: ignore[union-attr]
        done = TryOutcome(TaskState.SUCCESS, at(1), at(2))
        assert tasks.replay_try(conn, run.pk, "a", 1, outcome=done, pid=9)
        ti = tasks.get_task_instance(conn, run.pk, "a")
        assert ti is not None and (ti.state, ti.try_number) == (TaskState.SUCCESS, 1)
        # Replaying it again, or an older try, changes nothing.
        assert not tasks.replay_try(conn, run.pk, "a", 1, outcome=done)
        assert not tasks.replay_try(conn, run.pk, "a", 0, outcome=None)
        # A try the user cleared meanwhile stays cleared.
        tasks.clear_task_instances(conn, run.pk, ["a"])
        assert not tasks.replay_try(conn, run.pk, "a", 1, outcome=done)
        assert tasks.get_task_instance(conn, run.pk, "a").state == TaskState.NONE  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("action", "try_state", "error"),
    [
        ("mark", S.FAILED, "stopped: marked failed while it ran"),
        ("mark_success", S.SUCCESS, "stopped: marked success while it ran"),
        ("clear", S.FAILED, "stopped: cleared while it ran"),
    ],
)
def test_a_running_try_of_a_task_marked_or_cleared_gets_an_end(
    db_engine: Engine, action: str, try_state: TaskState, error: str
) -> None:
    """The scheduler stops such a try and its own end is then refused (the task moved on): the
    try row must not stay running for ever (the gantt, the task page and the tries API read it)."""
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        queue_task(conn, db_engine, run.key, "a")
        assert tasks.try_started(conn, run.pk, "a", 1, hostname="w1", pid=7, at=at(1))
        if action == "clear":
            tasks.clear_task_instances(conn, run.pk, ["a"], now=at(5))
        else:
            tasks.mark_task_instances(conn, run.pk, ["a"], try_state, now=at(5))
        (attempt,) = tasks.list_tries(conn, run.pk, "a")
        # the try's own end, arriving after: refused, the row keeps the end given above
        late = TryOutcome(S.SUCCESS, at(1), at(9))
        assert not tasks.try_finished(conn, run.pk, "a", 1, late)
        (after,) = tasks.list_tries(conn, run.pk, "a")
    assert (attempt.state, attempt.start_date, attempt.end_date, attempt.error) == (try_state, at(1), at(5), error)
    assert attempt.duration == pytest.approx(4 * 60)
    assert (after.state, after.end_date) == (try_state, at(5))
    if action != "clear":  # the task instance marked ends with its duration too, as in Airflow
        with read_transaction(db_engine) as conn:
            instance = tasks.get_task_instance(conn, run.pk, "a")
        assert instance is not None and instance.duration == pytest.approx(4 * 60), instance
