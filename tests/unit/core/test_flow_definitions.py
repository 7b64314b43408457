"""Writing flows: dependency syntax, groups, defaults, decorated tasks, and definition errors."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ductwork import (
    BashOperator,
    EmptyOperator,
    Flow,
    IntParameter,
    PythonOperator,
    TaskGroup,
    chain,
    cross_downstream,
    flow,
    task,
)
from ductwork.errors import (
    CycleError,
    DefinitionError,
    DuplicateTaskError,
    InvalidDependencyError,
    MissingParameterError,
    ParameterTypeError,
    ScheduleError,
    UnknownArgumentError,
    UnknownParameterError,
)


def edges(f: Flow) -> set[tuple[str, str]]:
    return {(up, n.task_id) for n in f.to_graph() for up in n.upstream}


def test_shift_operators_lists_and_set_methods() -> None:
    with Flow("f") as f:
        a, b, c, d, e = (EmptyOperator(task_id=x) for x in "abcde")
        a >> [b, c] >> d
        e << d
        [a] << EmptyOperator(task_id="z")
        x = EmptyOperator(task_id="x")
        x.set_upstream(e)
        y = EmptyOperator(task_id="y")
        y.set_downstream(x)
    assert edges(f) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d"), ("d", "e"), ("z", "a"), ("e", "x"), ("y", "x")}


def test_chain_and_cross_downstream() -> None:
    with Flow("f") as f:
        t = {x: EmptyOperator(task_id=x) for x in "abcdefg"}
        chain(t["a"], [t["b"], t["c"]], [t["d"], t["e"]], t["f"])
        cross_downstream([t["f"]], [t["g"]])
    assert edges(f) == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "e"), ("d", "f"), ("e", "f"), ("f", "g")}


def test_task_groups_prefix_ids_and_connect_by_roots_and_leaves() -> None:
    with Flow("f") as f:
        start = EmptyOperator(task_id="start")
        with TaskGroup("extract") as group:
            one = EmptyOperator(task_id="one")
            two = EmptyOperator(task_id="two")
            one >> two
            EmptyOperator(task_id="side")
        end = EmptyOperator(task_id="end")
        start >> group >> end
    graph = f.to_graph()
    assert graph.nodes["extract.one"].group == "extract"
    assert edges(f) == {
        ("start", "extract.one"),
        ("start", "extract.side"),
        ("extract.one", "extract.two"),
        ("extract.two", "end"),
        ("extract.side", "end"),
    }
    assert "extract" in graph.groups


def test_tasks_created_in_a_loop() -> None:
    with Flow("f") as f:
        join = EmptyOperator(task_id="join")
        for i in range(5):
            PythonOperator(task_id=f"part_{i}", python_callable=lambda: None) >> join
    assert len(f.to_graph().nodes["join"].upstream) == 5


def test_default_args_fill_what_tasks_do_not_set() -> None:
    with Flow("f", default_args={"retries": 3, "retry_delay": 7, "owner": "ana"}):
        a = EmptyOperator(task_id="a")
        b = EmptyOperator(task_id="b", retries=0)
    assert (a.retries, a.retry_delay, a.owner) == (3, 7.0, "ana")
    assert b.retries == 0


def test_unknown_default_arg_is_an_error() -> None:
    with Flow("f", default_args={"retires": 3}) as f:
        EmptyOperator(task_id="a")
    with pytest.raises(DefinitionError, match="default_args key 'retires'.*Did you mean 'retries'"):
        f.to_graph()


def test_definition_errors_are_clear() -> None:
    with Flow("f"):
        with pytest.raises(
            UnknownArgumentError, match=r"PythonOperator\(task_id='p'\): unknown argument 'pyton_callable'"
        ):
            PythonOperator(task_id="p", pyton_callable=print)  # type: ignore[call-arg]
        EmptyOperator(task_id="dup")
        with pytest.raises(DuplicateTaskError, match="duplicate task id 'dup'"):
            EmptyOperator(task_id="dup")
        with pytest.raises(InvalidDependencyError, match="cannot depend on 'load'"):
            EmptyOperator(task_id="q") >> "load"  # type: ignore[operator]
    with pytest.raises(ScheduleError, match="flow 'g': invalid schedule"):
        Flow("g", schedule="every minute")
    with Flow("c") as cyclic:
        a, b = EmptyOperator(task_id="a"), EmptyOperator(task_id="b")
        a >> b >> a
    with pytest.raises(CycleError, match="flow 'c': dependency cycle: (a -> b -> a|b -> a -> b)"):
        cyclic.to_graph()


def test_flow_parameters_are_typed() -> None:
    f = Flow("p", params={"n": IntParameter(default=2), "label": "x", "must": IntParameter()})
    assert f.resolve_params({"n": "5", "must": 1}) == {"n": 5, "label": "x", "must": 1}
    with pytest.raises(ParameterTypeError, match="flow 'p': parameter 'n' wants int, got 'five'"):
        f.resolve_params({"n": "five", "must": 1})
    with pytest.raises(MissingParameterError, match="missing required parameter 'must'"):
        f.resolve_params({})
    with pytest.raises(UnknownParameterError, match="unknown parameter 'nn'.*Did you mean 'n'"):
        f.resolve_params({"nn": 1, "must": 1})


def test_bash_operator_needs_a_command() -> None:
    with Flow("b"), pytest.raises(DefinitionError, match="bash_command must be a non-empty string"):
        BashOperator(task_id="x", bash_command="")


def test_decorated_tasks_build_edges_from_arguments_and_number_repeated_calls() -> None:
    @task
    def one() -> int:
        return 1

    @task
    def add(a: int, b: int) -> int:
        return a + b

    @flow
    def sums() -> None:
        x = one()
        y = one()
        add(x, y)
        add.override(task_id="again")(x, 5)

    f = sums.build()
    assert set(f.tasks) == {"one", "one__1", "add", "again"}
    assert set(f.to_graph().nodes["add"].upstream) == {"one", "one__1"}
    with pytest.raises(DefinitionError, match="task 'add': missing argument"), Flow("h"):
        add(1)


def test_flow_function_parameters_come_from_annotations() -> None:
    @task
    def show(n: int) -> int:
        return n

    @flow(schedule="@daily")
    def typed(n: int = 3, rate: float = 0.5) -> None:
        show(n)

    params = typed.build().to_graph().meta.params
    assert params["n"]["type"] == "int" and params["n"]["default"] == "3"
    assert params["rate"]["type"] == "float"


def test_a_task_outside_a_flow_is_a_plain_function() -> None:
    @task
    def double(x: int) -> int:
        return 2 * x

    assert double(4) == 8


def test_override_changes_only_what_it_names() -> None:
    @task(retries=2)
    def pull(n: int) -> dict[str, int]:
        """Fetch n rows."""
        return {"n": n}

    again = pull.override(task_id="pull_again", retries=5)
    assert (again.task_id, again.operator_kwargs, again.multiple_outputs) == ("pull_again", {"retries": 5}, True)
    assert (pull.task_id, pull.operator_kwargs) == ("pull", {"retries": 2})  # the original is unchanged
    assert again.__name__ == "pull" and again.__doc__ == "Fetch n rows." and again(3) == {"n": 3}
    with Flow("o") as f:
        again(1)
        pull(2)
    assert (f.tasks["pull_again"].retries, f.tasks["pull"].retries) == (5, 2)
    with pytest.raises(DefinitionError, match="task 'pull_again': missing argument"), Flow("p"):
        again()


@pytest.mark.parametrize(
    ("argument", "value", "says"),
    [
        ("retries", "abc", "retries must be a whole number, got 'abc'"),
        ("retries", 1.5, "retries must be a whole number"),
        ("retries", -1, "retries must be at least 0"),
        ("pool_slots", 0, "pool_slots must be at least 1"),
        ("priority_weight", "high", "priority_weight must be a whole number"),
    ],
)
def test_a_bad_number_argument_names_the_task_and_the_argument(argument: str, value: object, says: str) -> None:
    from ductwork import EmptyOperator, Flow

    with Flow("numbers"), pytest.raises(DefinitionError, match=f"task 'a': {says}"):
        EmptyOperator(task_id="a", **{argument: value})  # type: ignore[arg-type]


def test_whole_numbers_given_as_text_or_floats_are_taken() -> None:
    from ductwork import EmptyOperator, Flow

    with Flow("numbers"):
        op = EmptyOperator(task_id="a", retries="3", pool_slots=2.0, priority_weight=-5)  # type: ignore[arg-type]
    assert (op.retries, op.pool_slots, op.priority_weight) == (3, 2, -5)


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"start_date": "2024-02-01", "end_date": "2024-01-01"}, "end_date"),
        ({"max_active_runs": 0}, "max_active_runs=0"),
        ({"max_active_tasks": 0}, "max_active_tasks=0"),
    ],
)
def test_settings_under_which_a_flow_could_never_run_are_refused(settings: dict[str, Any], named: str) -> None:
    """They loaded, and the flow then never ran (a `trigger --wait` waited for ever)."""
    with pytest.raises(DefinitionError, match=named):
        Flow("stuck", schedule="@daily", **settings)


def test_ds_and_ts_of_a_flow_in_another_timezone_agree() -> None:
    """In Asia/Tokyo, ds was the local date and ts_nodash the UTC one, a day before."""
    import datetime as dt

    from ductwork.testing import run_flow

    with Flow("tokyo", schedule="@daily", timezone="Asia/Tokyo") as tokyo:
        BashOperator(task_id="say", bash_command="echo {{ ds }} {{ ds_nodash }} {{ ts }} {{ ts_nodash }}")
    result = run_flow(tokyo, logical_date=dt.datetime(2026, 12, 1, tzinfo=dt.timezone(dt.timedelta(hours=9))))
    assert result.result("say") == "2026-12-01 20261201 2026-12-01T00:00:00+09:00 20261201T000000"


def test_a_task_and_a_task_group_cannot_share_an_id() -> None:
    # Both were accepted: task 'x' next to group 'x' (whose tasks are 'x.y'); Airflow refuses it.
    from ductwork import EmptyOperator, Flow, TaskGroup
    from ductwork.errors import DuplicateTaskError

    with (
        pytest.raises(DuplicateTaskError, match=r"task group id 'x' is already the id of a task \(defined at "),
        Flow("task_then_group"),
    ):
        EmptyOperator(task_id="x")
        with TaskGroup("x"):
            EmptyOperator(task_id="y")
    with (
        pytest.raises(DuplicateTaskError, match=r"task id 'x' is already the id of a task group"),
        Flow("group_then_task"),
    ):
        with TaskGroup("x"):
            EmptyOperator(task_id="y")
        EmptyOperator(task_id="x")


def test_testing_a_run_parameter_or_a_task_result_in_a_flow_body_is_an_error() -> None:
    # `if debug:` on a @flow argument and `if result:` on a task's output were always true (the
    # objects standing for them are truthy), so the guarded tasks were in every run.
    from ductwork import flow, task

    @task
    def step() -> int:
        return 0

    @flow
    def by_param(debug: bool = False) -> None:
        step()
        if debug:
            step()

    @flow
    def by_result() -> None:
        if step():
            step()

    with pytest.raises(DefinitionError, match="run parameter 'debug' has no value while the flow is defined"):
        by_param.build()
    with pytest.raises(DefinitionError, match="the result of task 'step' is not known while the flow is defined"):
        by_result.build()


def test_comparing_or_computing_with_a_run_parameter_or_a_task_result_says_why_not() -> None:
    """`if limit > 3:` or `add(limit + 1, 2)` in a @flow body was Python's TypeError naming a
    class of Ductwork's (`'>' not supported between instances of 'ParamRef' and 'int'`)."""
    from ductwork import flow, task

    @task
    def count() -> int:
        return 1

    @task
    def show(n: int) -> int:
        return n

    @flow
    def compares(limit: int = 5) -> None:
        if limit > 3:
            count()

    @flow
    def computes(limit: int = 5) -> None:
        show(1 + limit)

    @flow
    def compares_result() -> None:
        if count() >= 2:
            count()

    with pytest.raises(DefinitionError, match="run parameter 'limit' has no value .*, so `>` cannot be applied"):
        compares.build()
    with pytest.raises(DefinitionError, match="run parameter 'limit' has no value .*, so `\\+` cannot be applied"):
        computes.build()
    with pytest.raises(DefinitionError, match="the result of task 'count' is not known .*, so `>=` cannot be"):
        compares_result.build()


def test_calling_a_flow_function_inside_another_flow_is_an_error() -> None:
    # inner() inside outer's body built a separate flow and added none of its tasks, silently.
    from ductwork import flow, task

    @task
    def step() -> int:
        return 0

    @flow
    def inner() -> None:
        step()

    @flow
    def outer() -> None:
        inner()

    with pytest.raises(DefinitionError, match="flow 'inner' is called inside flow 'outer', which does not add its"):
        outer.build()
    assert list(inner().tasks) == ["step"]


def test_template_fields_that_name_no_attribute_are_errors() -> None:
    # Both were silently never rendered: the operator got "select {{ ds }}" as written.
    from ductwork import BaseOperator, Flow

    with pytest.raises(DefinitionError, match=r"Single.template_fields is the string 'sql': .* such as \('sql',\)"):

        class Single(BaseOperator):
            template_fields = "sql"  # type: ignore[assignment]

    class Misspelt(BaseOperator):
        template_fields = ("sql", "sqll")

        def __init__(self, *, sql: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.sql = sql

    with (
        pytest.raises(DefinitionError, match=r"Misspelt\(task_id='q'\): template field 'sqll' is not an attribute"),
        Flow("misspelt_field"),
    ):
        Misspelt(task_id="q", sql="select {{ ds }}")


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (
            {"op_args": "abc"},
            "op_args takes a list of positional arguments, got str 'abc' (one argument: op_args=['abc'])",
        ),
        (
            {"op_args": {"x": 1}},
            "op_args takes a list of positional arguments, got dict {'x': 1} (arguments by name go in op_kwargs)",
        ),
        ({"op_args": 5}, "op_args takes a list of positional arguments, got int 5"),
        ({"op_kwargs": [1]}, "op_kwargs takes a mapping of argument names to values, got list [1]"),
    ],
)
def test_python_operator_arguments_of_the_wrong_shape_are_named(arguments: dict[str, Any], says: str) -> None:
    # "abc" ran print('a', 'b', 'c'); [1] was "TypeError: cannot convert dictionary update sequence ..."
    with pytest.raises(DefinitionError, match="PythonOperator\\(task_id='p'\\): " + re.escape(says)), Flow("shapes"):
        PythonOperator(task_id="p", python_callable=print, **arguments)


def test_python_operator_takes_another_tasks_whole_result_as_its_arguments() -> None:
    # op_args=a.output (Airflow's XComArg) was refused: "cannot be tested with if/and/or/not"
    from ductwork.testing import run_flow

    with Flow("whole") as whole:
        listed = PythonOperator(task_id="listed", python_callable=lambda: [2, 3])
        named = PythonOperator(task_id="named", python_callable=lambda: {"b": 10})
        PythonOperator(task_id="sum", python_callable=lambda a, b: a + b, op_args=[1], op_kwargs=named.output)
        PythonOperator(task_id="product", python_callable=lambda x, y: x * y, op_args=listed.output)
        number = PythonOperator(task_id="number", python_callable=lambda: 5)
        PythonOperator(task_id="bad", python_callable=print, op_args=number.output)
    result = run_flow(whole)
    assert result.result("sum") == 11 and result.result("product") == 6
    assert "op_args takes a list of positional arguments, got int 5" in (result.tasks["bad"].tries[-1].error or "")


def test_airflow_style_none_arguments_of_a_flow_are_its_defaults_and_bad_ones_are_named() -> None:
    """description=None (Airflow's DAG default, written out) was an IntegrityError traceback when
    `ductwork run` recorded the flow; tags=None and max_active_runs=None were TypeErrors naming
    neither the flow nor the argument; tags="etl" became the tags 'e', 't', 'l'."""
    with Flow("airflowish", description=None, tags=None, max_active_runs=None) as f:
        EmptyOperator(task_id="a")
    assert (f.description, f.tags, f.max_active_runs) == ("", (), 16)
    for kwargs, message in (
        ({"tags": "etl"}, "flow 'bad': tags must be a list of texts, such as ['etl'], got 'etl'"),
        ({"tags": ["a", 3]}, "flow 'bad': each tag must be text, got 3"),
        ({"description": 5}, "flow 'bad': description must be text, got 5"),
        ({"max_active_runs": "many"}, "flow 'bad': max_active_runs must be a whole number, got 'many'"),
    ):
        with pytest.raises(DefinitionError) as err:
            Flow("bad", **kwargs)  # type: ignore[arg-type]
        assert str(err.value) == message
