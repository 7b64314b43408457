"""Dynamic task mapping with Ductwork's own API: ``@task`` functions and operators."""

from __future__ import annotations

import re
from typing import Any

import pytest

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


@task
def ten() -> int:
    return 10


@task
def ten_text() -> str:
    return "10"


def test_a_partial_argument_may_be_another_tasks_output() -> None:
    # add.partial(y=ten()) failed every instance: "duplicate task id 'add'" (building an instance
    # linked ten to an operator with the mapped task's id, which joined the flow as a second 'add').
    @flow
    def mapped() -> None:
        total(add.partial(y=ten()).expand(x=numbers()))

    with Flow("partial_output") as f:
        BashOperator.partial(task_id="echo", env={"N": ten_text()}).expand(bash_command=["echo a$N", "echo b$N"])

    summary = run_locally(mapped.build())
    assert summary.state.value == "success", [(t, s.tries[-1].error) for t, s in summary.tasks.items() if s.tries]
    assert summary.result("add") == [11, 12, 13]
    assert summary.result("total") == 36
    shown = run_flow(f)
    assert shown.state == "success", [(t, s.tries[-1].error) for t, s in shown.tasks.items() if s.tries]
    assert shown.result("echo") == ["a10", "b10"]
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


@task
def _add(x: int, y: int) -> int:
    return x + y


@pytest.mark.parametrize(
    ("message", "define"),
    [
        ("expand() got an unexpected keyword argument 'z'", lambda: _add.partial(y=1).expand(z=[1])),
        (
            "partial() got an unexpected keyword argument 'yy'. Did you mean 'y'?",
            lambda: _add.partial(yy=1).expand(x=[1]),
        ),
        ("expand() leaves out argument(s) 'y'", lambda: _add.expand(x=[1, 2])),
        (
            "expand_kwargs() got an unexpected keyword argument 'retries'",
            lambda: _add.expand_kwargs([{"x": 1, "y": 2, "retries": 3}]),
        ),
    ],
)
def test_a_misspelt_or_missing_argument_of_a_mapped_task_fails_at_definition(message: str, define: Any) -> None:
    # As a plain call of the same @task does: it was one TypeError per mapped instance at run time.
    from ductwork.errors import DefinitionError

    with pytest.raises(DefinitionError, match=re.escape(f"task '_add': {message}")), Flow("mapped_names"):
        define()


def test_a_misspelt_argument_of_a_mapped_operator_fails_at_definition() -> None:
    from ductwork.errors import DefinitionError

    with (
        pytest.raises(
            DefinitionError,
            match=r"BashOperator\(task_id='b'\): expand\(\) got an unknown argument "
            r"'bash_comand'. Did you mean 'bash_command'\?",
        ),
        Flow("mapped_operator_names"),
    ):
        BashOperator.partial(task_id="b").expand(bash_comand=["echo 1"])
    with (
        pytest.raises(DefinitionError, match=r"partial\(\) got an unknown argument 'retry'"),
        Flow("mapped_operator_names_2"),
    ):
        BashOperator.partial(task_id="b", retry=1).expand_kwargs([{"bash_command": "echo 1"}])


def test_mapped_tasks_whose_arguments_fit_still_define_and_run() -> None:
    from ductwork import flow, task

    @task
    def add(x: int, y: int, ti=None) -> int:
        return x + y

    @task
    def pairs() -> list[dict]:
        return [{"x": 1, "y": 2}]

    @flow(flow_id="mapped_fit")
    def mapped_fit() -> None:
        add.partial(y=1).expand(x=[1, 2])
        add.expand_kwargs(pairs())
        add.expand_kwargs([{"x": 1, "y": 2}])

    assert run_flow(mapped_fit).state == "success"
