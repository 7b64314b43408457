"""The readiness tracker: any DAG, any outcomes, always consistent with the trigger rules."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ductwork.core.graph import NodeSpec, topological
from ductwork.core.states import TERMINAL, TaskState
from ductwork.core.trigger_rules import Decision, TriggerRule, UpstreamTally, decide
from ductwork.engine.tracker import RunTracker

S = TaskState


@st.composite
def dags(draw: st.DrawFn) -> dict[str, NodeSpec]:
    n = draw(st.integers(min_value=1, max_value=30))
    names = [f"t{i}" for i in range(n)]
    out = {}
    for i, name in enumerate(names):
        ups = draw(st.lists(st.sampled_from(names[:i]), max_size=3, unique=True)) if i else []
        out[name] = NodeSpec(name, tuple(ups), trigger_rule=draw(st.sampled_from(list(TriggerRule))))
    return topological(out)


@settings(max_examples=150)
@given(dags(), st.randoms(use_true_random=False))
def test_runs_to_completion_respecting_rules(nodes: dict[str, NodeSpec], rng: random.Random) -> None:
    tracker = RunTracker(nodes)
    tracker.start()
    ran: list[str] = []
    while not tracker.finished:
        ready = tracker.take_ready()
        assert ready, "not finished but nothing is ready: deadlock"
        task_id = rng.choice(ready)
        tracker.push_back([t for t in ready if t != task_id])
        node = nodes[task_id]
        if node.trigger_rule != TriggerRule.ALWAYS:
            assert (
                all(tracker.state[u] in TERMINAL for u in node.upstream)
                or decide(node.trigger_rule, _tally(tracker, node)) == Decision.RUN
            )
        tracker.set_state(task_id, S.QUEUED)
        tracker.set_state(task_id, S.RUNNING)
        tracker.set_state(task_id, rng.choice([S.SUCCESS, S.FAILED, S.SKIPPED]))
        ran.append(task_id)
    assert len(ran) == len(set(ran))
    for task_id, state in tracker.state.items():
        assert state in TERMINAL
        if task_id not in ran:
            node = nodes[task_id]
            assert decide(node.trigger_rule, _tally(tracker, node)) in (Decision.SKIP, Decision.UPSTREAM_FAILED)
            assert state in (S.SKIPPED, S.UPSTREAM_FAILED)


def _tally(tracker: RunTracker, node: NodeSpec) -> UpstreamTally:
    t = UpstreamTally(total=len(node.upstream))
    for up in node.upstream:
        tracker._tally_add(t, tracker.state[up], up)
    return t


def test_resume_from_recorded_states_continues_where_it_stopped() -> None:
    nodes = topological({t: NodeSpec(t, (p,) if p else ()) for t, p in [("a", ""), ("b", "a"), ("c", "b")]})
    tracker = RunTracker(nodes, {"a": S.SUCCESS})
    tracker.start()
    assert tracker.take_ready() == ["b"]


def test_priority_orders_ready_tasks() -> None:
    nodes = {t: NodeSpec(t, priority_weight=w) for t, w in [("low", 1), ("high", 9), ("mid", 5)]}
    tracker = RunTracker(nodes)
    tracker.start()
    assert tracker.take_ready() == ["high", "mid", "low"]


def test_cascade_of_upstream_failed_through_a_long_chain_is_iterative() -> None:
    n = 5000
    nodes = {f"t{i}": NodeSpec(f"t{i}", (f"t{i - 1}",) if i else ()) for i in range(n)}
    tracker = RunTracker(nodes)
    tracker.start()
    tracker.set_state("t0", S.QUEUED)
    tracker.set_state("t0", S.RUNNING)
    changes = tracker.set_state("t0", S.FAILED)
    assert len(changes) == n and tracker.finished
    assert tracker.state[f"t{n - 1}"] == S.UPSTREAM_FAILED


def test_manual_mark_recounts_downstream() -> None:
    nodes = topological({"a": NodeSpec("a"), "b": NodeSpec("b", ("a",), trigger_rule=TriggerRule.ALL_DONE)})
    tracker = RunTracker(nodes, {"a": S.FAILED})
    tracker.set_state("a", S.SUCCESS, manual=True)
    assert tracker.tally["b"].success == 1 and tracker.tally["b"].failed == 0


def test_a_mapped_tasks_instances_are_counted_downstream_also_after_a_reload_and_a_mark() -> None:
    """Downstream of a mapped task ``m`` (its instances ``m[i]`` upstream of it), the tally counts
    the instances, whether ``m`` ended in this tracker or was read back ended (a scheduler's
    restart), and follows an instance marked afterwards."""
    nodes = {
        "m[0]": NodeSpec("m[0]", (), extra={"mapped_task": "m"}),
        "m[1]": NodeSpec("m[1]", (), extra={"mapped_task": "m"}),
        "m": NodeSpec("m", ("m[0]", "m[1]"), trigger_rule=TriggerRule.ALL_DONE),
        "join": NodeSpec("join", ("m",), trigger_rule=TriggerRule.ALL_SUCCESS),
    }
    states = {"m[0]": S.SUCCESS, "m[1]": S.SKIPPED, "m": S.SKIPPED}
    tracker = RunTracker(nodes, states)
    tally = tracker.tally["join"]
    assert (tally.total, tally.success, tally.skipped) == (2, 1, 1)
    tracker.set_state("m[1]", S.SUCCESS, manual=True)
    assert (tally.total, tally.success, tally.skipped) == (2, 2, 0)
    tracker.set_state("m", S.SUCCESS, manual=True)  # the mapped task follows its instances
    assert (tally.total, tally.success, tally.skipped) == (2, 2, 0)
    assert decide(TriggerRule.ALL_SUCCESS, tally) == Decision.RUN
