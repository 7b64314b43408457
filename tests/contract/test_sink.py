"""The event sink: one step's events in one transaction, and a real run recorded end to end."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import Engine
from store_helpers import T0, at, change, create_run, graph

from ductwork import EmptyOperator, Flow, PythonOperator
from ductwork.core.clock import SystemClock
from ductwork.core.context import RunInfo
from ductwork.core.graph import NodeSpec
from ductwork.core.results import MemoryResults
from ductwork.core.states import RunState, TaskState
from ductwork.engine.execution import TryOutcome
from ductwork.engine.executors.inline import InProcessExecutor
from ductwork.engine.recorder import MemoryRecorder, RunSummary
from ductwork.engine.supervisor import NodesAdded, RunEnded, StateChanged, Supervisor, TryBegan, TryEnded
from ductwork.errors import NotFoundError
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.repo import events, runs, tasks
from ductwork.store.results import SqlResults
from ductwork.store.sink import SqlEventSink

S = TaskState


def test_one_step_of_mixed_events(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph(retries=1))
    key = run.key
    ok = TryOutcome(S.SUCCESS, at(1), at(2), rendered={"cmd": "echo hi"})
    failed = TryOutcome(S.UP_FOR_RETRY, at(1), at(3), error="boom", traceback="tb", next_try_at=at(8))
    step = [
        StateChanged(key, change("a", S.NONE, S.SCHEDULED, "ready"), at(0), 0),
        StateChanged(key, change("e", S.NONE, S.SCHEDULED, "ready"), at(0), 0),
        StateChanged(key, change("a", S.SCHEDULED, S.QUEUED, "dispatched"), at(0), 1),
        StateChanged(key, change("e", S.SCHEDULED, S.QUEUED, "dispatched"), at(0), 1),
        StateChanged(key, change("a", S.QUEUED, S.RUNNING, "started"), at(1), 1),
        TryBegan(key, "a", 1, at(1), "worker-1"),
        TryEnded(key, "a", 1, ok),
        StateChanged(key, change("a", S.RUNNING, S.SUCCESS), at(2), 1),
        TryEnded(key, "e", 1, failed),  # lost before it started: no TryBegan
        StateChanged(key, change("e", S.QUEUED, S.UP_FOR_RETRY, "boom"), at(3), 1),
        NodesAdded(key, (NodeSpec("extra", ("a",)), NodeSpec("b", ("a", "extra")))),
        StateChanged(key, change("extra", S.NONE, S.SCHEDULED, "ready"), at(3), 0),
        StateChanged(key, change("c", S.NONE, S.SCHEDULED, "ready"), at(3), 0),
    ]
    SqlEventSink(db_engine).record(step)
    with read_transaction(db_engine) as conn:
        ti = {t.task_id: t for t in tasks.list_task_instances(conn, run.pk)}
        tries = {(t.task_id, t.try_number): t for t in tasks.list_tries(conn, run.pk)}
        log = events.list_state_events(conn, run.pk)
        stored = runs.get_run_by_pk(conn, run.pk)
        loaded = runs.load_run_graph(conn, run.pk)
    a, e = ti["a"], ti["e"]
    assert (a.state, a.try_number, a.start_date, a.end_date, a.duration, a.hostname) == (
        S.SUCCESS,
        1,
        at(1),
        at(2),
        60.0,
        "worker-1",
    )
    assert (e.state, e.try_number, e.start_date, e.end_date, e.next_try_at) == (S.UP_FOR_RETRY, 1, at(1), at(3), at(8))
    assert (ti["c"].state, ti["extra"].state, ti["d"].state) == (S.SCHEDULED, S.SCHEDULED, S.NONE)
    assert ti["b"].upstream == ("a", "extra")
    assert loaded.graph.nodes["b"].upstream == ("a", "extra") and "extra" in loaded.graph.nodes
    ta, te = tries[("a", 1)], tries[("e", 1)]
    assert (ta.state, ta.start_date, ta.end_date, ta.hostname, ta.rendered) == (
        S.SUCCESS,
        at(1),
        at(2),
        "worker-1",
        {"cmd": "echo hi"},
    )
    assert (te.state, te.start_date, te.error, te.traceback) == (S.UP_FOR_RETRY, at(1), "boom", "tb")
    assert [(x.task_id, x.new) for x in log] == [
        (c.change.task_id, c.change.new.value) for c in step if isinstance(c, StateChanged)
    ]
    assert log[2].reason == "dispatched" and log[2].try_number == 1
    assert stored is not None and (stored.state, stored.start_date) == (RunState.RUNNING, at(0))


def test_a_try_recorded_over_two_steps_keeps_its_start(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
    sink = SqlEventSink(db_engine)
    sink.record(
        [
            StateChanged(run.key, change("a", S.NONE, S.QUEUED), at(0), 1),
            StateChanged(run.key, change("a", S.QUEUED, S.RUNNING), at(1), 1),
            TryBegan(run.key, "a", 1, at(1), "w-7"),
        ]
    )
    sink.record(
        [
            TryEnded(run.key, "a", 1, TryOutcome(S.UP_FOR_RESCHEDULE, at(1.5), at(2), next_try_at=at(10))),
            StateChanged(run.key, change("a", S.RUNNING, S.UP_FOR_RESCHEDULE), at(2), 1),
        ]
    )
    sink.record([RunEnded(run.key, RunState.FAILED, at(3))])
    with read_transaction(db_engine) as conn:
        (attempt,) = tasks.list_tries(conn, run.pk)
        ti = tasks.get_task_instance(conn, run.pk, "a")
        stored = runs.get_run_by_pk(conn, run.pk)
        last = events.list_state_events(conn, run.pk)[-1]
    assert (attempt.start_date, attempt.hostname, attempt.end_date, attempt.state) == (
        at(1),
        "w-7",
        at(2),
        S.UP_FOR_RESCHEDULE,
    )
    assert ti is not None and (ti.try_number, ti.next_try_at, ti.start_date) == (0, at(10), at(1.5))
    assert stored is not None and (stored.state, stored.start_date, stored.end_date) == (RunState.FAILED, at(0), at(3))
    assert (last.task_id, last.new) == (None, "failed")


def test_events_of_an_unknown_run_are_refused(db_engine: Engine) -> None:
    sink = SqlEventSink(db_engine)
    with pytest.raises(NotFoundError, match="'etl/ghost'"):
        sink.record([RunEnded("etl/ghost", RunState.SUCCESS, T0)])
    sink.record([])


def test_a_failed_step_writes_nothing(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
    with pytest.raises(NotFoundError):
        SqlEventSink(db_engine).record(
            [StateChanged(run.key, change("a", S.NONE, S.SCHEDULED), T0, 0), RunEnded("etl/ghost", RunState.FAILED, T0)]
        )
    with read_transaction(db_engine) as conn:
        assert tasks.task_states(conn, run.pk)["a"] == S.NONE
        assert events.list_state_events(conn, run.pk) == []


def _flow() -> Flow:
    calls = {"flaky": 0}

    def flaky() -> dict[str, Any]:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise ValueError("first try fails")
        return {"day": dt.date(2024, 1, 1), "n": calls["flaky"]}

    def broken() -> None:
        raise ZeroDivisionError("no")

    with Flow("e2e", schedule=None) as flow:
        start = PythonOperator(task_id="start", python_callable=lambda: (1, "two"))
        ok = PythonOperator(task_id="flaky", python_callable=flaky, retries=1, retry_delay=0)
        bad = PythonOperator(task_id="broken", python_callable=broken)
        start >> ok
        start >> bad >> EmptyOperator(task_id="after_broken")
    return flow


def test_a_real_run_recorded_through_the_supervisor(db_engine: Engine) -> None:
    flow = _flow()
    g, operators = flow.materialize(params={}, logical_date=T0)
    with transaction(db_engine) as conn:
        run = runs.create_run(conn, g, run_id="manual_1", logical_date=T0)
    info = RunInfo("e2e", "manual_1", T0, T0, T0)
    clock = SystemClock()
    results = SqlResults(db_engine)
    summary = RunSummary("e2e", "manual_1", g, MemoryResults())
    executor = InProcessExecutor(lambda node: operators[node.task_id], results, clock, parallelism=2)
    supervisor = Supervisor(executor, clock, [MemoryRecorder(summary), SqlEventSink(db_engine)])
    supervisor.add_run(info, g)
    try:
        supervisor.run_until_done()
    finally:
        executor.shutdown(wait=True)
    with read_transaction(db_engine) as conn:
        loaded = runs.load_run_graph(conn, run.pk)
        tries = tasks.list_tries(conn, run.pk)
    assert summary.state == RunState.FAILED
    assert loaded.run.state == RunState.FAILED and loaded.run.end_date is not None
    assert loaded.states == summary.task_states
    assert loaded.states == {
        "start": S.SUCCESS,
        "flaky": S.SUCCESS,
        "broken": S.FAILED,
        "after_broken": S.UPSTREAM_FAILED,
    }
    assert loaded.tries == {"start": 1, "flaky": 2, "broken": 1, "after_broken": 0}
    assert [(t.task_id, t.try_number, t.state) for t in tries] == [
        ("broken", 1, S.FAILED),
        ("flaky", 1, S.UP_FOR_RETRY),
        ("flaky", 2, S.SUCCESS),
        ("start", 1, S.SUCCESS),
    ]
    assert "ZeroDivisionError" in (tries[0].error or "") and all(t.end_date is not None for t in tries)
    assert results.pull(run.key, "start") == (1, "two")
    assert results.pull(run.key, "flaky") == {"day": dt.date(2024, 1, 1), "n": 2}


def test_the_scheduler_never_moves_a_try_back_that_its_worker_has_recorded(db_engine: Engine) -> None:
    """A worker records the end of its own try first; the scheduler's older view of that try
    (queued, running), written afterwards, must not undo it."""
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
    key = run.key
    sink = SqlEventSink(db_engine)
    sink.record(
        [
            StateChanged(key, change("a", S.NONE, S.SCHEDULED), at(0), 0),
            StateChanged(key, change("a", S.SCHEDULED, S.QUEUED), at(0), 1),
        ]
    )
    with transaction(db_engine) as conn:
        assert tasks.try_started(conn, run.pk, "a", 1, hostname="w", pid=1, at=at(1))
        assert tasks.try_finished(conn, run.pk, "a", 1, TryOutcome(S.SUCCESS, at(1), at(2)), hostname="w", pid=1)
    sink.record(
        [StateChanged(key, change("a", S.QUEUED, S.RUNNING, "started"), at(1), 1), TryBegan(key, "a", 1, at(1), "w")]
    )
    with read_transaction(db_engine) as conn:
        assert tasks.get_task_instance(conn, run.pk, "a").state == S.SUCCESS  # type: ignore[union-attr]
    sink.record([StateChanged(key, change("a", S.RUNNING, S.SUCCESS), at(2), 1)])
    sink.record([StateChanged(key, change("a", S.SUCCESS, S.QUEUED, "cleared and re-run"), at(5), 2)])
    with read_transaction(db_engine) as conn:
        assert tasks.get_task_instance(conn, run.pk, "a").state == S.QUEUED  # type: ignore[union-attr]


def test_events_decided_before_a_change_from_outside_do_not_undo_it(db_engine: Engine) -> None:
    """A driver's events written after a user cleared, marked or cancelled tasks of its run
    (decided on the states it held before) keep only what agrees with the change: a marked
    task is not queued again, a cleared one is not ended by its old try, the run is not ended.
    A try that ended just before the change but was not recorded yet goes too: the change wins."""
    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
    key = run.key
    sink = SqlEventSink(db_engine)
    sink.remember(key, run.pk, run.revision)
    now = dt.datetime.now(dt.UTC)
    before, after = now - dt.timedelta(seconds=30), now + dt.timedelta(seconds=30)
    sink.record(
        [
            StateChanged(key, change("a", S.NONE, S.SCHEDULED, "ready"), before, 0),
            StateChanged(key, change("a", S.SCHEDULED, S.QUEUED, "dispatched"), before, 1),
            StateChanged(key, change("a", S.QUEUED, S.RUNNING, "started"), before, 1),
            StateChanged(key, change("e", S.NONE, S.SCHEDULED, "ready"), before, 0),
            StateChanged(key, change("e", S.SCHEDULED, S.QUEUED, "dispatched"), before, 1),
            StateChanged(key, change("e", S.QUEUED, S.RUNNING, "started"), before, 1),
        ]
    )
    with transaction(db_engine) as conn:  # the user, while the driver holds its old view
        tasks.mark_task_instances(conn, run.pk, ["c", "e"], S.SKIPPED)
        tasks.clear_task_instances(conn, run.pk, ["a"])
    stale = [
        StateChanged(key, change("c", S.NONE, S.SCHEDULED, "ready"), after, 0),
        StateChanged(key, change("c", S.SCHEDULED, S.QUEUED, "dispatched"), after, 1),
        TryEnded(key, "a", 1, TryOutcome(S.SUCCESS, before, after)),
        StateChanged(key, change("a", S.RUNNING, S.SUCCESS), after, 1),
        TryEnded(key, "e", 1, TryOutcome(S.SUCCESS, before, before)),  # ended before the mark, unrecorded
        StateChanged(key, change("e", S.RUNNING, S.SUCCESS), before, 1),
        StateChanged(key, change("d", S.NONE, S.SCHEDULED, "ready"), after, 0),  # untouched: kept
        RunEnded(key, RunState.SUCCESS, after),
    ]
    sink.record(stale)
    with read_transaction(db_engine) as conn:
        ti = {t.task_id: t for t in tasks.list_task_instances(conn, run.pk)}
        stored = runs.get_run_by_pk(conn, run.pk)
        history = [(e.old, e.new) for e in events.list_state_events(conn, run.pk) if e.task_id == "e"]
    assert (ti["a"].state, ti["c"].state, ti["d"].state) == (S.NONE, S.SKIPPED, S.SCHEDULED)
    assert ti["e"].state == S.SKIPPED and history[-1] == ("running", "skipped")
    assert stored is not None and stored.state == RunState.RUNNING
    sink.remember(key, run.pk, stored.revision)  # the driver loaded the run again: all is written
    sink.record([StateChanged(key, change("a", S.NONE, S.SCHEDULED, "ready"), after, 1)])
    with read_transaction(db_engine) as conn:
        assert tasks.get_task_instance(conn, run.pk, "a").state == S.SCHEDULED  # type: ignore[union-attr]
