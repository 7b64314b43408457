"""Dynamic task mapping with Ductwork's own API: ``@task`` functions and operators."""

from __future__ import annotations

from ductwork import BashOperator, Flow, SkipTask, flow, task
from ductwork.engine.local import run_locally
from ductwork.testing import run_flow


@task
def numbers() -> list[int]:
    return [1, 2, 3]


@task
def add(x: int, y: int = 0) -> int:
    return x + y


@task
def total(values: list[int]) -> int:
    return sum(values)


def test_task_function_expand_over_an_output_with_partial_arguments() -> None:
    @flow
    def mapped() -> None:
        total(add.partial(y=10).expand(x=numbers()))

    summary = run_locally(mapped.build())
    assert summary.state.value == "success"
    assert summary.result("add") == [11, 12, 13]
    assert summary.result("add[2]") == 13
    assert summary.result("total") == 36
    assert summary["add"].tries[-1].state.value == "success"
    assert len(summary["add"].tries) == 1  # expanding is not a try


def test_operator_partial_expand_and_a_failing_instance_fails_the_collector() -> None:
    with Flow("ops") as ops:
        BashOperator.partial(task_id="sh", retries=1, retry_delay=0).expand(bash_command=["echo ok", "exit 3"])
    summary = run_locally(ops)
    states = {t: s.value for t, s in summary.task_states.items()}
    assert states == {"sh": "failed", "sh[0]": "success", "sh[1]": "failed"}
    assert summary.state.value == "failed"
    assert summary.tasks["sh"].tries[-1].error == "sh: 1 of its 2 mapped instances failed: sh[1]"


def test_downstream_of_a_mapped_task_gets_the_values_of_the_instances_that_succeeded() -> None:
    """As Airflow: one skipped instance gave a ``none_failed`` downstream ``None`` (the collector
    was skipped by an ``all_success`` rule), and an ``all_done`` one after a failed instance too."""

    @task
    def numbers() -> list[int]:
        return [0, 1, 2, 3]

    @task(retries=2, retry_delay=0)
    def square(x: int) -> int:
        if x == 1:
            raise SkipTask("one is skipped")
        if x == 3:
            raise ValueError("three fails")
        return x * x

    @task(trigger_rule="none_failed")
    def careful(values: list[int]) -> list[int]:
        return values

    @task(trigger_rule="all_done")
    def anyway(values: list[int]) -> list[int]:
        return values

    @flow(schedule=None)
    def partial_success() -> None:
        squares = square.expand(x=numbers())
        careful(squares)
        anyway(squares)

    result = run_flow(partial_success)
    assert result.task_states["square"] == "failed"
    assert result.task_states["careful"] == "upstream_failed"
    assert result.result("anyway") == [0, 4]
    assert len(result["square[3]"].tries) == 3
    assert len(result["square"].tries) == 1  # the collector is not retried (nor alerts again)

    @flow(schedule=None)
    def some_skipped() -> None:
        squares = square.partial().expand(x=[0, 1, 2])
        careful(squares)

    skipped = run_flow(some_skipped)
    assert skipped.task_states["square"] == "skipped"
    assert skipped.result("careful") == [0, 4]
