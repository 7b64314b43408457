"""Dynamic task mapping with Ductwork's own API: ``@task`` functions and operators."""

from __future__ import annotations

from ductwork import BashOperator, Flow, flow, task
from ductwork.engine.local import run_locally


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
        BashOperator.partial(task_id="sh", retries=0).expand(bash_command=["echo ok", "exit 3"])
    summary = run_locally(ops)
    states = {t: s.value for t, s in summary.task_states.items()}
    assert states == {"sh": "upstream_failed", "sh[0]": "success", "sh[1]": "failed"}
    assert summary.state.value == "failed"
