"""Runs: creation with their graph in bulk, lookups, listing and paging, state, graph growth."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from store_helpers import IST, T0, at, create_run, graph, rich_graph

from ductwork.core.graph import NodeSpec
from ductwork.core.states import RunState, TaskState
from ductwork.errors import NotFoundError
from ductwork.store.engine import read_transaction, transaction
from ductwork.store.errors import RunExistsError
from ductwork.store.repo import events, runs, tasks

S = TaskState


def test_create_run_records_the_run_and_one_instance_per_node(db_engine: Engine) -> None:
    g = graph()
    start = T0.astimezone(IST)
    with transaction(db_engine) as conn:
        run = runs.create_run(
            conn,
            g,
            run_id="scheduled__2024-01-01",
            run_type="scheduled",
            logical_date=start,
            data_interval=(start, at(1440)),
            params={"day": dt.date(2024, 1, 1), "n": 3},
            conf={"who": "me"},
            states={"e": S.SUCCESS},
            note="first",
            now=at(1),
        )
        instances = tasks.list_task_instances(conn, run.pk)
    assert isinstance(run.pk, int)
    assert (run.flow_id, run.run_id, run.run_type, run.state) == ("etl", "scheduled__2024-01-01", "scheduled", "queued")
    assert run.key == "etl/scheduled__2024-01-01"
    assert (run.logical_date, run.data_interval_start, run.data_interval_end) == (T0, T0, at(1440))
    assert run.logical_date.tzinfo is not None
    assert run.params == {"day": dt.date(2024, 1, 1), "n": 3}
    assert run.conf == {"who": "me"}
    assert run.version_hash == g.version_hash()
    assert (run.queued_at, run.created_at, run.start_date, run.end_date, run.note) == (
        at(1),
        at(1),
        None,
        None,
        "first",
    )
    assert [i.task_id for i in instances] == ["a", "e", "b", "c", "d"]
    assert {i.task_id: i.state for i in instances} == {
        "a": S.NONE,
        "b": S.NONE,
        "c": S.NONE,
        "d": S.NONE,
        "e": S.SUCCESS,
    }
    assert instances[2].upstream == ("a",)
    assert all(i.try_number == 0 and i.max_tries == 1 and i.pool == "default_pool" for i in instances)


def test_run_ids_are_unique_per_flow_and_a_clash_leaves_the_transaction_usable(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        create_run(conn, graph("etl"), "r1")
        with pytest.raises(RunExistsError, match="'etl' already has a run with run id 'r1'"):
            create_run(conn, graph("etl"), "r1")
        create_run(conn, graph("other"), "r1")  # the same run id in another flow is fine
        create_run(conn, graph("etl"), "r2")
    with read_transaction(db_engine) as conn:
        assert runs.list_runs(conn).total == 3


def test_run_ids_clash_across_transactions(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        create_run(conn, graph(), "r1")
    with pytest.raises(RunExistsError), transaction(db_engine) as conn:
        create_run(conn, graph(), "r1")


def test_lookups(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph(), "manual__2024-01-01T00:00:00+00:00")
        other = create_run(conn, graph("x"), "r/with/slashes")
        assert runs.get_run(conn, "etl", run.run_id) == run
        assert runs.get_run_by_pk(conn, run.pk) == run
        assert runs.get_run_by_key(conn, run.key) == run
        assert runs.get_run_by_key(conn, "x/r/with/slashes") == other
        assert runs.run_pks(conn, [run.key, other.key, "etl/missing"]) == {run.key: run.pk, other.key: other.pk}
        assert runs.get_run(conn, "etl", "missing") is None
        assert runs.get_run_by_pk(conn, 987654) is None
        with pytest.raises(NotFoundError, match="not a run key"):
            runs.get_run_by_key(conn, "no-slash")


def test_list_runs_filters_and_pages(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        made = []
        for i in range(7):
            flow_id = "etl" if i % 2 == 0 else "other"
            run_type = "scheduled" if i < 5 else "manual"
            made.append(create_run(conn, graph(flow_id), f"r{i}", logical_date=at(60 * i), run_type=run_type))
        runs.set_run_state(conn, made[0].pk, RunState.SUCCESS, at=at(1))
        everything = runs.list_runs(conn, limit=100)
        first = runs.list_runs(conn, limit=3)
        second = runs.list_runs(conn, limit=3, offset=3)
        last = runs.list_runs(conn, limit=3, offset=6)
        oldest = runs.list_runs(conn, limit=2, newest_first=False)
        etl = runs.list_runs(conn, flow_id="etl")
        scheduled_etl = runs.list_runs(conn, flow_id="etl", run_types=["scheduled"])
        window = runs.list_runs(conn, since=at(60), until=at(240))
        queued = runs.list_runs(conn, states=[RunState.QUEUED])
        none = runs.list_runs(conn, states=[RunState.RUNNING])
    assert everything.total == 7 and [r.run_id for r in everything.items] == [f"r{i}" for i in reversed(range(7))]
    assert [r.run_id for r in first.items + second.items + last.items] == [r.run_id for r in everything.items]
    assert (first.total, first.limit, first.offset, second.offset) == (7, 3, 0, 3)
    assert len(last.items) == 1
    assert [r.run_id for r in oldest.items] == ["r0", "r1"]
    assert [r.run_id for r in etl.items] == ["r6", "r4", "r2", "r0"]
    assert [r.run_id for r in scheduled_etl.items] == ["r4", "r2", "r0"]
    assert [r.run_id for r in window.items] == ["r3", "r2", "r1"]
    assert queued.total == 6 and none.total == 0 and none.items == ()


def test_active_runs_and_run_state(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        r1 = create_run(conn, graph(), "r1")
        r2 = create_run(conn, graph(), "r2")
        r3 = create_run(conn, graph("other"), "r3")
        assert runs.set_run_state(conn, r1.pk, RunState.RUNNING, at=at(1))
        assert runs.set_run_state(conn, r1.pk, RunState.RUNNING, at=at(2)) is False  # already running
        assert runs.set_run_state(conn, r2.pk, RunState.SUCCESS, at=at(3))
        assert runs.set_run_state(conn, r3.pk, RunState.FAILED, at=at(4), expected=[RunState.RUNNING]) is False
        assert [r.run_id for r in runs.active_runs(conn)] == ["r1", "r3"]
        assert [r.run_id for r in runs.active_runs(conn, flow_id="etl")] == ["r1"]
        running = runs.get_run_by_pk(conn, r1.pk)
        done = runs.get_run_by_pk(conn, r2.pk)
        assert runs.set_run_state(conn, r2.pk, RunState.QUEUED, at=at(5), reason="cleared")
        requeued = runs.get_run_by_pk(conn, r2.pk)
        log = events.list_state_events(conn, r2.pk)
        with pytest.raises(NotFoundError):
            runs.set_run_state(conn, 424242, RunState.RUNNING)
    assert running is not None and (running.state, running.start_date, running.end_date) == ("running", at(1), None)
    assert done is not None and (done.state, done.end_date) == ("success", at(3))
    assert requeued is not None and (requeued.state, requeued.end_date, requeued.queued_at) == ("queued", None, at(5))
    assert [(e.task_id, e.old, e.new, e.reason) for e in log] == [
        (None, "queued", "success", ""),
        (None, "success", "queued", "cleared"),
    ]


def test_a_run_keeps_its_graph(db_engine: Engine) -> None:
    g = rich_graph()
    with transaction(db_engine) as conn:
        run = create_run(conn, g, "r1", states={"extract": S.SUCCESS}, tries={"extract": 2})
        loaded = runs.load_run_graph(conn, run.pk)
        with pytest.raises(NotFoundError):
            runs.load_run_graph(conn, 31337)
    assert loaded.run == run
    assert loaded.graph.to_dict() == g.to_dict()
    assert loaded.graph.version_hash() == g.version_hash()
    assert loaded.states == {"extract": S.SUCCESS, "check": S.NONE}
    assert loaded.tries == {"extract": 2, "check": 0}


def test_runs_grow_with_dynamic_dependencies(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph(edges={"root": [], "report": ["root"]}), "r1")
        added = runs.add_nodes(
            conn,
            run.pk,
            [NodeSpec("part_1"), NodeSpec("part_2", ("part_1",)), NodeSpec("report", ("root", "part_1", "part_2"))],
            now=at(1),
        )
        again = runs.add_nodes(conn, run.pk, [NodeSpec("part_1")])
        loaded = runs.load_run_graph(conn, run.pk)
        report = tasks.get_task_instance(conn, run.pk, "report")
        with pytest.raises(NotFoundError):
            runs.add_nodes(conn, 999999, [NodeSpec("x")])
    assert added == ["part_1", "part_2"] and again == []
    assert list(loaded.graph.nodes) == ["root", "part_1", "part_2", "report"]
    assert loaded.graph.nodes["report"].upstream == ("root", "part_1", "part_2")
    assert loaded.states["part_2"] == S.NONE
    assert report is not None and report.upstream == ("root", "part_1", "part_2")


def test_ten_thousand_node_run(db_engine: Engine) -> None:
    edges = {f"t{i:05d}": ([f"t{i - 1:05d}"] if i % 100 else []) for i in range(10_000)}
    g = graph("big", edges, retries=1, pool="io")
    with transaction(db_engine) as conn:
        run = create_run(conn, g, "r1")
    with read_transaction(db_engine) as conn:
        states = tasks.task_states(conn, run.pk)
        loaded = runs.load_run_graph(conn, run.pk)
    assert len(states) == 10_000 and set(states.values()) == {S.NONE}
    assert loaded.graph.to_dict() == g.to_dict()


_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.dates()
    | st.datetimes(timezones=st.just(dt.UTC))
    | st.decimals(allow_nan=False, allow_infinity=False).map(lambda d: Decimal(str(d)))
)
_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_run_ids = itertools.count()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.text(max_size=10), _values, max_size=5), conf=st.dictionaries(st.text(), _values))
def test_params_and_conf_round_trip(db_engine: Engine, params: dict[str, Any], conf: dict[str, Any]) -> None:
    with transaction(db_engine) as conn:
        run = create_run(conn, graph(), f"h{next(_run_ids)}", params=params, conf=conf)
    with read_transaction(db_engine) as conn:
        stored = runs.get_run_by_pk(conn, run.pk)
    assert stored is not None and stored.params == params and stored.conf == conf


def test_outside_changes_bump_the_run_revision(db_engine: Engine) -> None:
    from ductwork.store.repo import tasks

    with transaction(db_engine) as conn:
        run = create_run(conn, graph())
        assert run.revision == 0
        tasks.mark_task_instances(conn, run.pk, ["a"], TaskState.SUCCESS)
        tasks.clear_task_instances(conn, run.pk, ["a"], downstream=True)
        record = runs.get_run_by_pk(conn, run.pk)
    assert record is not None and record.revision == 2


def test_a_run_whose_graph_is_built_later(db_engine: Engine) -> None:
    with transaction(db_engine) as conn:
        run = runs.create_run(conn, graph("later", {}), run_id="manual__x", logical_date=T0, graph_pending=True)
        assert run.graph_pending and runs.load_run_graph(conn, run.pk).graph.nodes == {}
        built = graph("later", {"a": [], "b": ["a"]})
        assert runs.set_run_graph(conn, run.pk, built, states={"a": TaskState.SUCCESS})
        loaded = runs.load_run_graph(conn, run.pk)
    assert not loaded.run.graph_pending
    assert list(loaded.graph.nodes) == ["a", "b"] and loaded.states["a"] == TaskState.SUCCESS
    # A second scheduler that built it too (several build new runs' graphs) writes nothing: its
    # task instances were inserted again (a unique violation that ended that scheduler).
    with transaction(db_engine) as conn:
        assert not runs.set_run_graph(conn, run.pk, graph("later", {"a": [], "b": ["a"], "c": []}))
        again = runs.load_run_graph(conn, run.pk)
    assert list(again.graph.nodes) == ["a", "b"] and again.states["a"] == TaskState.SUCCESS


def test_load_run_graph_reports_max_tries_and_due_retries(db_engine: Engine) -> None:
    import sqlalchemy as sa

    from ductwork.store.tables import task_instances as ti

    with transaction(db_engine) as conn:
        run = create_run(conn, graph(retries=2))
        conn.execute(
            sa.update(ti)
            .where(ti.c.run_pk == run.pk, ti.c.task_id == "a")
            .values(state="up_for_retry", try_number=1, next_try_at=at(5))
        )
        loaded = runs.load_run_graph(conn, run.pk)
    assert loaded.max_tries["a"] == 3
    assert loaded.next_try_at == {"a": at(5)}
