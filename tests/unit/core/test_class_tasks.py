"""Luigi-style class tasks: identity, completeness, inputs, dynamic dependencies, events."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ductwork import (
    DateParameter,
    Event,
    ExternalProgramTask,
    ExternalTask,
    IntParameter,
    LocalTarget,
    MemoryTarget,
    Parameter,
    Task,
    WrapperTask,
)
from ductwork.core.class_flow import compile_tasks
from ductwork.testing import build


class Leaf(Task):
    n = IntParameter()
    note = Parameter(default="", significant=False)

    def output(self) -> MemoryTarget:
        return MemoryTarget(f"leaf-{self.n}")

    def run(self) -> None:
        self.output().write_text(str(self.n))


def test_identity_is_family_and_significant_params() -> None:
    assert Leaf(n=1) == Leaf(n="1") == Leaf(1)
    assert Leaf(n=1, note="a") == Leaf(n=1, note="b")
    assert Leaf(n=1) != Leaf(n=2)
    assert Leaf(n=1).task_id == "Leaf(n=1)"
    assert len({Leaf(n=1), Leaf(1), Leaf(n=2)}) == 2


def test_requires_and_input_keep_their_shape() -> None:
    class Both(Task):
        def requires(self) -> dict[str, Leaf]:
            return {"a": Leaf(n=1), "b": Leaf(n=2)}

        def output(self) -> MemoryTarget:
            return MemoryTarget("both")

        def run(self) -> None:
            parts = self.input()
            self.output().write_text(parts["a"].read_text() + parts["b"].read_text())

    result = build(Both())
    assert result.state == "success"
    assert MemoryTarget("both").read_text() == "12"


def test_a_task_without_outputs_is_never_complete_and_wrapper_is_complete_with_its_deps() -> None:
    class NoOutput(Task):
        pass

    class Wrap(WrapperTask):
        def requires(self) -> list[Leaf]:
            return [Leaf(n=5)]

    assert not NoOutput().complete()
    assert not Wrap().complete()
    build(Wrap())
    assert Wrap().complete()


def test_dynamic_dependencies_are_run_first_and_recorded_in_the_graph() -> None:
    class Dyn(Task):
        def output(self) -> MemoryTarget:
            return MemoryTarget("dyn")

        def run(self):  # type: ignore[no-untyped-def]
            targets = yield [Leaf(n=7), Leaf(n=8)]
            self.output().write_text(",".join(t.read_text() for t in targets))

    result = build(Dyn())
    assert result.state == "success"
    assert MemoryTarget("dyn").read_text() == "7,8"
    assert set(result.graph.nodes["Dyn"].upstream) == {"Leaf(n=7)", "Leaf(n=8)"}
    assert result["Dyn"].tries[-1].state == "success"
    assert len(result["Dyn"].tries) == 1  # waiting for new requirements is not a try


def test_missing_external_input_is_pending_not_failed() -> None:
    """Luigi's "missing" category: the external task waits (up_for_reschedule, checked again by
    a scheduler), its dependents are never run, and the one-shot build ends unsuccessful."""

    class Upstream(ExternalTask):
        date = DateParameter()

        def output(self) -> MemoryTarget:
            return MemoryTarget(f"export-{self.date}")

    class Uses(Task):
        def requires(self) -> Upstream:
            return Upstream(date="2024-01-31")

        def output(self) -> MemoryTarget:
            return MemoryTarget("uses")

        def run(self) -> None:
            self.output().write_text("x")

    result = build(Uses())
    assert result.state == "failed"
    assert result["Upstream(date=2024-01-31)"].state == "up_for_reschedule"
    assert "external dependency Upstream(date=2024-01-31) is not complete" in (
        result["Upstream(date=2024-01-31)"].tries[-1].error or ""
    )
    assert result["Uses"].state == "none"
    MemoryTarget("export-2024-01-31").write_text("ok")
    assert build(Uses()).state == "success"


def test_event_handlers_fire_and_a_failing_handler_is_harmless() -> None:
    seen: list[tuple[str, str]] = []

    class Evented(Task):
        fail = Parameter(default="no")

        def output(self) -> MemoryTarget:
            return MemoryTarget(f"evented-{self.fail}")

        def run(self) -> None:
            if self.fail == "yes":
                raise ValueError("bad data")
            self.output().write_text("ok")

    @Evented.event_handler(Event.START)
    def started(task: Task) -> None:
        seen.append(("start", task.task_id))

    @Evented.event_handler(Event.SUCCESS)
    def succeeded(task: Task) -> None:
        seen.append(("success", task.task_id))
        raise RuntimeError("handler bug")

    @Evented.event_handler(Event.FAILURE)
    def failed(task: Task, exc: BaseException) -> None:
        seen.append(("failure", str(exc)))

    @Evented.event_handler(Event.PROCESSING_TIME)
    def timed(task: Task, seconds: float) -> None:
        seen.append(("time", f"{seconds >= 0}"))

    assert build(Evented()).state == "success"
    assert build(Evented(fail="yes")).state == "failed"
    assert ("start", "Evented(fail=no)") in seen and ("success", "Evented(fail=no)") in seen
    assert ("time", "True") in seen and ("failure", "bad data") in seen


def test_a_handler_registered_on_a_base_after_a_run_is_called_in_the_next() -> None:
    seen: list[str] = []

    class Base(Task):
        def run(self) -> None:
            pass

    class Child(Base):
        n = Parameter()

        def complete(self) -> bool:
            return False

    @Child.event_handler(Event.SUCCESS)
    def first(task: Task) -> None:
        seen.append(f"first {task.task_id}")

    assert build(Child(n="1")).state == "success"
    assert seen == ["first Child(n=1)"]

    @Base.event_handler(Event.SUCCESS)
    def later(task: Task) -> None:
        seen.append(f"later {task.task_id}")

    assert build(Child(n="2")).state == "success"
    assert seen[1:] == ["first Child(n=2)", "later Child(n=2)"]


def test_external_program_task(tmp_path: Path) -> None:
    class Echo(ExternalProgramTask):
        word = Parameter()

        def program_args(self) -> list[str]:
            return [
                sys.executable,
                "-c",
                f"import sys; print({self.word!r}); sys.exit(3 if {self.word!r} == 'bad' else 0)",
            ]

        def output(self) -> LocalTarget:
            return LocalTarget(tmp_path / f"{self.word}.done")

        def run(self) -> object:
            out = super().run()
            self.output().write_text("done")
            return out

    ok = build(Echo(word="hello"))
    assert ok.state == "success" and ok.result("Echo(word=hello)") == "hello"
    assert "hello" in ok.logs[("Echo(word=hello)", 1)]
    bad = build(Echo(word="bad"))
    assert bad.state == "failed"
    assert "exited with code 3" in (bad["Echo(word=bad)"].tries[-1].error or "")


def test_compile_prunes_requirements_of_complete_tasks() -> None:
    class Top(Task):
        def requires(self) -> list[Leaf]:
            return [Leaf(n=i) for i in range(3)]

        def output(self) -> MemoryTarget:
            return MemoryTarget("top")

    nodes, _ = compile_tasks([Top()])
    assert set(nodes) == {"Top", "Leaf(n=0)", "Leaf(n=1)", "Leaf(n=2)"}
    MemoryTarget("top").write_text("x")
    nodes, _ = compile_tasks([Top()])
    assert list(nodes) == ["Top"] and nodes["Top"].extra["already_complete"]


def test_retries_resources_and_priority_reach_the_graph() -> None:
    class Heavy(Task):
        retries = 2
        retry_delay = 1.5
        priority = 9
        resources = {"db": 1}

    node = compile_tasks([Heavy()])[0]["Heavy"]
    assert (node.retries, node.retry_delay, node.priority_weight, dict(node.resources)) == (2, 1.5, 9, {"db": 1})


def test_missing_parameter_names_task_and_parameter() -> None:
    from ductwork.errors import MissingParameterError

    with pytest.raises(MissingParameterError, match="Leaf: missing required parameter 'n' \\(int\\)"):
        Leaf()


def test_a_requirement_that_ran_without_its_output_fails_the_task_that_needs_it() -> None:
    """As Luigi's worker does: before a task runs, its requirements must be complete."""
    asked: list[str] = []

    class Careless(Task):
        def output(self) -> MemoryTarget:
            return MemoryTarget("careless-never-written")

        def run(self) -> None:
            pass

    class Needs(Task):
        def requires(self) -> Careless:
            asked.append("requires")
            return Careless()

        def output(self) -> MemoryTarget:
            return MemoryTarget("needs")

        def run(self) -> None:
            self.output().write_text("done")

    result = build(Needs())
    assert result["Careless"].state == "success"
    assert result["Needs"].state == "failed"
    assert "unfulfilled dependencies at run time: Careless" in (result["Needs"].tries[-1].error or "")
    assert asked == ["requires"]  # the requirements compiled into the graph are the ones checked


def test_requires_returning_something_that_is_not_a_task_is_refused_naming_the_task() -> None:
    """`def requires(self): return "Events"` (or a target) was dropped without a word, and the
    task ran without the input it needed; Luigi refuses it ("requires() must return Task
    objects"), and so does Ductwork, naming the task and what it got."""
    from ductwork.errors import DefinitionError

    class Needs(Task):
        def requires(self) -> object:
            return [Leaf(n=1), "Leaf"]

        def output(self) -> MemoryTarget:
            return MemoryTarget("needs")

        def run(self) -> None:
            self.output().write("x")

    with pytest.raises(DefinitionError, match=r"Needs: requires\(\) must return tasks .*got 'Leaf' \(str\)"):
        compile_tasks([Needs()])


def test_yielding_something_that_is_not_a_task_from_run_fails_the_task() -> None:
    """`yield "Leaf"` (or a target) in run() was dropped without a word: the rest of run()
    went on without the requirement, and the task succeeded without its output; Luigi fails
    the task, and so does Ductwork, naming the task and what it yielded."""

    class YieldsName(Task):
        def output(self) -> MemoryTarget:
            return MemoryTarget("yields-name")

        def run(self) -> object:
            yield [Leaf(n=3), "Leaf"]
            self.output().write_text("x")

    result = build(YieldsName())
    assert result["YieldsName"].state == "failed"
    error = result["YieldsName"].tries[-1].error or ""
    assert "YieldsName: run() must yield tasks" in error and "got 'Leaf' (str)" in error, error


class Regional(Task):
    day = DateParameter()
    region = Parameter(default="north")


def test_a_flow_from_task_reads_the_parameters_a_run_is_not_given_where_the_class_reads_them() -> None:
    """A ``Flow.from_task`` run gave its task the class's defaults explicitly, so
    ``DUCTWORK_REGIONAL_REGION`` or ``[Regional] region`` of ductwork.toml were ignored (the
    run built ``north``), where ``ductwork build`` and Luigi take them. What the run is given wins."""
    from ductwork import Flow
    from ductwork.core.config import ParamSources, use_sources

    flow = Flow.from_task(Regional, schedule=None, date_param="day")
    with use_sources(ParamSources.load(environ={"DUCTWORK_REGIONAL_REGION": "east"})):
        assert flow.resolve_params({}) == {"region": "east"}
        assert flow.resolve_params({"region": "south"}) == {"region": "south"}
    assert flow.resolve_params({}) == {"region": "north"}


def test_unfulfilled_requirements_name_the_outputs_they_did_not_write() -> None:
    """Luigi's worker says which outputs of an incomplete requirement do not exist; the message
    named the requirement only, leaving the user to work out which of its files was missing."""

    class HalfDone(Task):
        def output(self) -> list[MemoryTarget]:
            return [MemoryTarget("half-written"), MemoryTarget("half-never-written")]

        def run(self) -> None:
            self.output()[0].write_text("one")

    class NeedsHalf(Task):
        def requires(self) -> HalfDone:
            return HalfDone()

        def output(self) -> MemoryTarget:
            return MemoryTarget("needs-half")

        def run(self) -> None:
            self.output().write_text("done")

    result = build(NeedsHalf())
    error = result["NeedsHalf"].tries[-1].error or ""
    assert "unfulfilled dependencies at run time: HalfDone (MemoryTarget('half-never-written'))" in error, error


def test_a_requirement_is_as_urgent_as_the_most_urgent_task_needing_it() -> None:
    """As Luigi's scheduler ranks them: a requirement's priority is raised to its dependents'
    (transitively, never lowered), so what an urgent task needs is not left behind less urgent
    work; its node had its own priority only."""
    from ductwork.core.class_flow import compile_tasks

    class Source(Task):
        def output(self) -> MemoryTarget:
            return MemoryTarget("prio-source")

    class Middle(Task):
        priority = 5

        def requires(self) -> Source:
            return Source()

        def output(self) -> MemoryTarget:
            return MemoryTarget("prio-middle")

    class Urgent(Task):
        priority = 100

        def requires(self) -> Middle:
            return Middle()

        def output(self) -> MemoryTarget:
            return MemoryTarget("prio-urgent")

    class Keen(Task):
        priority = 200

        def output(self) -> MemoryTarget:
            return MemoryTarget("prio-keen")

    nodes, _ = compile_tasks([Urgent(), Keen()])
    assert {n.task_id: n.priority_weight for n in nodes.values()} == {
        "Urgent": 100,
        "Middle": 100,
        "Source": 100,
        "Keen": 200,
    }
