"""The graph model validates, orders and serializes; the state machine is a table."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec, find_cycle, topological
from ductwork.core.states import TERMINAL, TRANSITIONS, RunState, TaskState, can_transition, run_state_of
from ductwork.core.trigger_rules import TriggerRule
from ductwork.errors import CycleError, InvalidDependencyError, InvalidTransitionError


def nodes(edges: dict[str, list[str]]) -> dict[str, NodeSpec]:
    return {t: NodeSpec(t, tuple(ups)) for t, ups in edges.items()}


def test_cycle_error_shows_the_path_in_flow_direction() -> None:
    # a >> b >> c >> a
    with pytest.raises(CycleError) as err:
        topological(nodes({"a": ["c"], "b": ["a"], "c": ["b"], "d": []}), where="flow 'f'")
    path = err.value.path
    assert path[0] == path[-1] and set(path) == {"a", "b", "c"}
    for up, down in itertools.pairwise(path):
        assert up in nodes({"a": ["c"], "b": ["a"], "c": ["b"]})[down].upstream
    assert str(err.value).startswith("flow 'f': dependency cycle: ")


def test_missing_upstream_is_named() -> None:
    with pytest.raises(InvalidDependencyError, match="'b' depends on 'ghost'"):
        topological(nodes({"a": [], "b": ["ghost"]}))


@st.composite
def dags(draw: st.DrawFn) -> dict[str, NodeSpec]:
    n = draw(st.integers(min_value=1, max_value=25))
    names = [f"t{i}" for i in range(n)]
    out = {}
    for i, name in enumerate(names):
        ups = draw(st.lists(st.sampled_from(names[:i]), max_size=3, unique=True)) if i else []
        out[name] = NodeSpec(
            name,
            tuple(ups),
            trigger_rule=draw(st.sampled_from(list(TriggerRule))),
            retries=draw(st.integers(0, 3)),
            resources=draw(st.dictionaries(st.sampled_from(["db", "cpu"]), st.integers(1, 3), max_size=2)),
        )
    order = draw(st.permutations(names))
    return {name: out[name] for name in order}


@given(dags())
def test_topological_order_puts_upstream_first(graph: dict[str, NodeSpec]) -> None:
    ordered = topological(graph)
    position = {t: i for i, t in enumerate(ordered)}
    assert set(ordered) == set(graph)
    for node in graph.values():
        for up in node.upstream:
            assert position[up] < position[node.task_id]
    assert find_cycle(graph) is None


@given(dags())
def test_graph_round_trips_through_json(graph: dict[str, NodeSpec]) -> None:
    g = FlowGraph(
        FlowMeta("f", tags=("a",), params={"n": {"type": "int", "required": False, "default": "1"}}), topological(graph)
    )
    back = FlowGraph.from_dict(g.to_dict())
    assert back.to_json() == g.to_json()
    assert back.version_hash() == g.version_hash()
    assert back.nodes == g.nodes


def test_version_hash_changes_with_the_graph() -> None:
    a = FlowGraph(FlowMeta("f"), topological(nodes({"a": [], "b": ["a"]})))
    b = FlowGraph(FlowMeta("f"), topological(nodes({"a": [], "b": []})))
    assert a.version_hash() != b.version_hash()


def test_terminal_states_have_no_automatic_way_out() -> None:
    for state in TERMINAL:
        assert TRANSITIONS[state] == frozenset()
        assert can_transition(state, TaskState.NONE, manual=True)  # clear
    assert not can_transition(TaskState.SUCCESS, TaskState.RUNNING)


@given(st.sampled_from(list(TaskState)), st.sampled_from(list(TaskState)))
def test_transition_table_is_the_only_gate(old: TaskState, new: TaskState) -> None:
    assert can_transition(old, new) == (old != new and new in TRANSITIONS[old])


def test_run_state_follows_leaves() -> None:
    s = TaskState
    assert run_state_of({"a": s.FAILED, "b": s.SUCCESS}, ["b"]) == RunState.SUCCESS  # absorbed by all_done
    assert run_state_of({"a": s.SUCCESS, "b": s.UPSTREAM_FAILED}, ["b"]) == RunState.FAILED
    assert run_state_of({"a": s.RUNNING}, ["a"]) == RunState.RUNNING


def test_invalid_transition_names_the_task() -> None:
    from ductwork.core.states import check_transition

    with pytest.raises(InvalidTransitionError, match="task 'load'"):
        check_transition("load", TaskState.SUCCESS, TaskState.RUNNING)
