"""A task's queue and executor_config, in all three styles, survive the graph's JSON round trip."""

from __future__ import annotations

import pytest

from ductwork import Flow, PythonOperator, Task, flow, task
from ductwork.core.class_flow import compile_tasks
from ductwork.core.graph import FlowGraph
from ductwork.errors import DefinitionError


def _one() -> int:
    return 1


def test_operators_decorated_functions_and_class_tasks_carry_queue_and_executor_config() -> None:
    with Flow("ops") as ops:
        PythonOperator(task_id="a", python_callable=_one, queue="gpu", executor_config={"image": "cuda:12"})
        PythonOperator(task_id="b", python_callable=_one)
    graph = FlowGraph.from_dict(ops.to_graph().to_dict())
    assert graph.nodes["a"].queue == "gpu" and dict(graph.nodes["a"].executor_config) == {"image": "cuda:12"}
    assert graph.nodes["b"].queue == "default" and dict(graph.nodes["b"].executor_config) == {}
    assert "executor_config" not in graph.nodes["b"].to_dict()  # defaults are left out: hashes unchanged

    @task(queue="io")
    def load() -> int:
        return 1

    @flow
    def decorated() -> None:
        load()

    assert decorated.build().to_graph().nodes["load"].queue == "io"

    class Report(Task):
        queue = "reports"
        executor_config = {"namespace": "bi"}

    nodes, _ = compile_tasks([Report()], prune_complete=False)
    assert nodes["Report"].queue == "reports" and dict(nodes["Report"].executor_config) == {"namespace": "bi"}


def test_an_empty_queue_is_refused_naming_the_task() -> None:
    message = r"PythonOperator\(task_id='a'\): queue must be a non-empty string"
    with pytest.raises(DefinitionError, match=message), Flow("bad"):
        PythonOperator(task_id="a", python_callable=_one, queue="")


def test_a_pool_that_is_not_a_name_is_refused_naming_the_task_and_none_is_the_default_pool() -> None:
    """pool=3 ran without a limit in a pool named '3'; pool=None (Airflow's default, written out)
    was an IntegrityError traceback when the run was recorded."""
    for bad in (3, "", "  "):
        message = rf"PythonOperator\(task_id='a'\): pool must be a pool's name \(text\), got {bad!r}"
        with pytest.raises(DefinitionError, match=message), Flow("bad"):
            PythonOperator(task_id="a", python_callable=_one, pool=bad)  # type: ignore[arg-type]
    with Flow("airflow_like") as f:
        PythonOperator(task_id="a", python_callable=_one, pool=None)
    assert f.to_graph().nodes["a"].pool == "default_pool"
