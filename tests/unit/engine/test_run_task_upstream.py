"""``ductwork.testing.run_task`` with ``upstream_results``: what a user gives is what the task gets."""

from __future__ import annotations

import pytest

from ductwork import flow, task
from ductwork.errors import NotFoundError
from ductwork.testing import run_task


@task
def load() -> list[float]:
    return [1.0, 2.0, 4.0]


@task(multiple_outputs=True)
def stats(xs: list[float]) -> dict:
    return {"n": len(xs), "mean": sum(xs) / len(xs)}


@task
def report(n: int, mean: float, label: str) -> str:
    return f"{label}: {n} values, mean {mean:.2f}"


@flow
def numbers(label: str = "weekly") -> None:
    s = stats(load())
    report(s["n"], s["mean"], label)


def test_a_multiple_outputs_upstream_given_as_its_dict_feeds_each_key() -> None:
    # The README's Tutorial 3 flow: report takes s["n"] and s["mean"] of a multiple_outputs task.
    # Giving stats' return value used to hand report None for both (TypeError in the f-string).
    outcome = run_task(numbers, "report", upstream_results={"stats": {"n": 2, "mean": 1.5}}, params={"label": "x"})
    assert outcome.state == "success", outcome.error
    assert outcome.result == "x: 2 values, mean 1.50"


def test_a_key_the_dict_lacks_is_none_as_in_a_real_run() -> None:
    outcome = run_task(numbers, "report", upstream_results={"stats": {"n": 2}}, params={"label": "x"})
    assert outcome.state == "failed" and "NoneType" in (outcome.error or "")


def test_an_upstream_result_naming_no_task_of_the_flow_is_an_error_naming_it() -> None:
    # A misspelt name used to be ignored: the task ran with None and failed inside the user's code.
    with pytest.raises(
        NotFoundError, match=r"upstream_results names 'stat', which is not a task of flow 'numbers'.*'stats'"
    ):
        run_task(numbers, "report", upstream_results={"stat": {"n": 2, "mean": 1.5}})


@task
def nums() -> list[int]:
    return [1, 2]


@task
def double(x: int) -> int:
    return 2 * x


@task
def total(values: list[int]) -> int:
    return sum(values)


@flow
def mapped() -> None:
    total(double.expand(x=nums()))


def test_a_mapped_task_runs_its_instances_over_the_upstream_results_given() -> None:
    result = run_task(mapped, "double", upstream_results={"nums": [5, 6]})
    assert result.state.value == "success"
    assert result.result == [10, 12]
