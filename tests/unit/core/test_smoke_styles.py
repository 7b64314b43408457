"""The three authoring styles compile to one graph and run to success in-process."""

from __future__ import annotations

from ductwork import EmptyOperator, Flow, IntParameter, MemoryTarget, PythonOperator, Task, flow, task
from ductwork.testing import build, run_flow


def test_operator_flow_passes_results_downstream() -> None:
    with Flow("ops") as f:
        a = PythonOperator(task_id="a", python_callable=lambda: 41)
        PythonOperator(task_id="b", python_callable=lambda x: x + 1, op_args=[a.output])
        a >> EmptyOperator(task_id="c")
    result = run_flow(f)
    assert result.state == "success"
    assert result.result("b") == 42
    assert f.to_graph().nodes["b"].upstream == ("a",)


def test_decorated_flow_with_named_outputs() -> None:
    @task(multiple_outputs=True)
    def stats(xs: list[int]) -> dict[str, int]:
        return {"n": len(xs), "total": sum(xs)}

    @task
    def mean(n: int, total: int) -> float:
        return total / n

    @flow
    def numbers(values: list = [1, 2, 3, 6]) -> None:  # noqa: B006
        s = stats(values)
        mean(s["n"], s["total"])

    result = run_flow(numbers)
    assert result.result("mean") == 3.0
    assert result.result("stats", "n") == 4


def test_class_tasks_build_and_skip_complete() -> None:
    class Part(Task):
        n = IntParameter()

        def output(self) -> MemoryTarget:
            return MemoryTarget(f"part-{self.n}")

        def run(self) -> None:
            self.output().write_text(str(self.n * 10))

    class Total(Task):
        def requires(self) -> list[Part]:
            return [Part(n=i) for i in range(3)]

        def output(self) -> MemoryTarget:
            return MemoryTarget("total")

        def run(self) -> None:
            self.output().write_text(str(sum(int(t.read_text()) for t in self.input())))

    first = build(Total())
    assert first.state == "success"
    assert MemoryTarget("total").read_text() == "30"
    assert len(first.tasks) == 4
    second = build(Total())
    assert list(second.tasks) == ["Total"]
    assert second["Total"].already_complete and not second["Total"].tries


def test_build_takes_a_list_as_luigi_build_does() -> None:
    import pytest

    from ductwork.errors import DefinitionError

    class Leaf(Task):
        n = IntParameter()

        def output(self) -> MemoryTarget:
            return MemoryTarget(f"leaf-list-{self.n}")

        def run(self) -> None:
            self.output().write_text("x")

    built = build([Leaf(n=1), Leaf(n=2)], Leaf(n=3))
    assert built.state == "success" and len(built.tasks) == 3
    with pytest.raises(DefinitionError, match="takes class task instances"):
        build(["Leaf"])  # type: ignore[list-item]


def test_a_result_asked_of_a_task_the_run_does_not_have_says_so() -> None:
    import pytest

    with Flow("one_task") as f:
        PythonOperator(task_id="answer", python_callable=lambda: 42)
    summary = run_flow(f)
    assert summary.result("answer") == 42
    with pytest.raises(KeyError, match="no task 'anwser' in this run. Did you mean 'answer'"):
        summary.result("anwser")
