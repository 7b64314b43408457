"""``priority_weight`` orders ready tasks across runs, as Airflow's scheduler does: with one slot
free, a newer run's urgent task goes before an older run's ordinary ones (it waited behind every
ready task of the older run); among equal weights the older run still goes first."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ductwork import Flow, PythonOperator
from ductwork.core.clock import SystemClock
from ductwork.core.graph import NodeSpec
from ductwork.core.results import MemoryResults
from ductwork.engine.executors.inline import InProcessExecutor
from ductwork.engine.supervisor import RunInfo, Supervisor

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _flow(flow_id: str, tasks: dict[str, int], ran: list[str]) -> Flow:
    with Flow(flow_id, schedule=None) as flow:
        for task_id, weight in tasks.items():
            PythonOperator(task_id=task_id, python_callable=ran.append, op_args=[task_id], priority_weight=weight)
    return flow


def _ran_in_order(*runs: tuple[str, dict[str, int]]) -> list[str]:
    """One run of each flow (the first is the oldest) through one supervisor with one slot."""
    ran: list[str] = []
    operators: dict[str, Any] = {}
    results = MemoryResults()

    def resolve(node: NodeSpec) -> Any:
        return operators[node.task_id]

    executor = InProcessExecutor(resolve, results, SystemClock(), parallelism=1)
    supervisor = Supervisor(executor, SystemClock())
    for flow_id, tasks in runs:
        graph, ops = _flow(flow_id, tasks, ran).materialize(params={}, logical_date=T0)
        operators.update(ops)
        supervisor.add_run(RunInfo(flow_id, "manual_1", T0, T0, T0), graph)
    try:
        supervisor.run_until_done()
    finally:
        executor.shutdown(wait=True)
    return ran


def test_a_newer_runs_urgent_task_goes_before_an_older_runs_ordinary_ones() -> None:
    ran = _ran_in_order(("nightly", {"a0": 1, "a1": 1, "a2": 1}), ("alert", {"urgent": 100}))
    assert ran == ["urgent", "a0", "a1", "a2"]


def test_among_equal_weights_the_older_run_goes_first() -> None:
    ran = _ran_in_order(("first", {"f0": 5, "f1": 5}), ("second", {"s0": 5, "s1": 1}), ("third", {"t0": 9}))
    assert ran == ["t0", "f0", "f1", "s0", "s1"]
