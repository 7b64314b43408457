"""``airflow.decorators``: ``@task`` (and ``.branch``, ``.short_circuit``, ``.bash``,
``.sensor``), ``@dag``, ``@task_group``, ``@setup``, ``@teardown`` over Ductwork's ``@task`` and
``@flow``."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, cast

from ductwork.compat.features import refuse
from ductwork.core.context import CONTEXT_NAMES, TaskContext
from ductwork.core.decorators import DecoratedOperator, FlowFunction, TaskFunction
from ductwork.core.mapping import MappedGroupArgument, MappedGroupExpander
from ductwork.core.operators.python import CallsPython, PythonOperator, call_with_context

from .._context import AIRFLOW_CONTEXT_NAMES
from ..models.baseoperator import AirflowOperatorMixin
from ..models.dag import DAG
from ..operators.bash import BashOperator
from ..operators.python import BranchPythonOperator, ShortCircuitOperator
from ..sensors.base import BaseSensorOperator, PokeReturnValue
from ..utils.task_group import TaskGroup


class _PythonDecoratedOperator(AirflowOperatorMixin, DecoratedOperator):
    def __init__(
        self,
        *,
        multiple_outputs: bool = False,
        templates_exts: Any = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if templates_exts:
            self.template_ext = tuple(templates_exts)
        self.multiple_outputs = multiple_outputs
        self.show_return_value_in_logs = show_return_value_in_logs

    def execute(self, context: TaskContext) -> Any:
        value = super().execute(context)
        if self.show_return_value_in_logs:  # as Airflow's PythonOperator, which @task runs as
            context["log"].info("Done. Returned value was: %s", value)
        return value


class _BranchDecoratedOperator(BranchPythonOperator):
    pass


class _ShortCircuitDecoratedOperator(ShortCircuitOperator):
    pass


class _BashDecoratedOperator(AirflowOperatorMixin, PythonOperator):
    """``@task.bash``: the function returns the command, which is rendered and run."""

    def __init__(
        self,
        *,
        env: Any = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_on_exit_code: Any = 99,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Named here (not only popped from kwargs) so that @task.bash(env=..., append_env=True)
        # passes the check of the arguments an operator accepts.
        self._bash_kwargs = {
            "env": env,
            "append_env": append_env,
            "output_encoding": output_encoding,
            "skip_on_exit_code": skip_on_exit_code,
            "cwd": cwd,
        }
        super().__init__(**kwargs)

    def execute(self, context: TaskContext) -> Any:
        from ductwork.core.templating import render_string, render_value
        from ductwork.core.xcom_arg import resolve_refs

        command = call_with_context(
            self.python_callable, resolve_refs(self.op_args, context), resolve_refs(self.op_kwargs, context), context
        )
        if not isinstance(command, str) or not command.strip():
            from ductwork.errors import TaskExecutionError

            raise TaskExecutionError(f"@task.bash {self.task_id!r} must return a non-empty command, got {command!r}")
        runner = BashOperator.__new__(BashOperator)
        runner.__dict__.update(self.__dict__)
        runner.bash_command = render_string(command, context, task_id=self.task_id, field="bash_command")
        # env and cwd are templated, as BashOperator's (env={"BASE_DIR": "{{ ds }}"}).
        runner.env = render_value(self._bash_kwargs.get("env"), context, task_id=self.task_id, field="env")
        runner.append_env = self._bash_kwargs.get("append_env", False)
        runner.output_encoding = self._bash_kwargs.get("output_encoding", "utf-8")
        runner.cwd = render_value(self._bash_kwargs.get("cwd"), context, task_id=self.task_id, field="cwd")
        runner.push_output = "last_line"
        runner.skip_on_exit_code = None
        codes = self._bash_kwargs.get("skip_on_exit_code", 99)
        runner.skip_codes = () if codes is None else ((codes,) if isinstance(codes, int) else tuple(codes))
        runner.output_processor = None
        import threading

        runner._proc = None
        runner._lock = threading.Lock()
        return BashOperator.execute(runner, context)


class _DecoratedSensor(CallsPython, BaseSensorOperator):
    """``@task.sensor``'s operator: the function is the poke, called as a ``PythonOperator``'s."""

    def __init__(
        self, *, python_callable: Callable[..., Any], op_args: Any = None, op_kwargs: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._keep_callable(python_callable, op_args, op_kwargs, None)
        from ductwork.core.xcom_arg import find_refs

        for ref in find_refs([self.op_args, self.op_kwargs]):
            self.add_upstream(ref.operator)  # type: ignore[arg-type]

    def poke(self, context: TaskContext) -> bool | PokeReturnValue:
        result = self._call_python(context)
        return result if isinstance(result, PokeReturnValue) else bool(result)


def _sensor_function(function: Callable[..., Any], kwargs: dict[str, Any]) -> TaskFunction:
    """``@task.sensor``'s function: its operator is the sensor whether it is called, renamed
    (``override``) or mapped (``expand``/``partial``), each of which builds the function's
    ``operator_class`` (a mapped one was a plain ``PythonOperator``, which refused
    ``poke_interval``). ``_DecoratedSensor`` takes ``python_callable``, ``op_args`` and
    ``op_kwargs`` as ``PythonOperator`` does, which is all ``TaskFunction`` gives it."""
    return _airflow_names(
        TaskFunction(function, operator_class=cast("type[PythonOperator]", _DecoratedSensor), **kwargs)
    )


class _TaskDecorator:
    """``@task``, ``@task(retries=2)``, ``@task.branch``, ``@task.short_circuit``, ``@task.bash``,
    ``@task.sensor``, ``@task.python``."""

    def __call__(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return _make(_PythonDecoratedOperator, python_callable, kwargs)

    def python(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return _make(_PythonDecoratedOperator, python_callable, kwargs)

    def branch(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return _make(_BranchDecoratedOperator, python_callable, kwargs)

    def short_circuit(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return _make(_ShortCircuitDecoratedOperator, python_callable, kwargs)

    def bash(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        return _make(_BashDecoratedOperator, python_callable, kwargs)

    def sensor(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
        if python_callable is not None:
            return _sensor_function(python_callable, kwargs)
        return lambda f: _sensor_function(f, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name in ("virtualenv", "external_python", "docker", "kubernetes", "branch_virtualenv", "pyspark"):

            def refused(*args: Any, **kwargs: Any) -> Any:
                refuse(f"@task.{name}", "only tasks that run in the worker's own Python are supported")

            return refused
        raise AttributeError(name)


_TASK_CONTEXT_NAMES = CONTEXT_NAMES | AIRFLOW_CONTEXT_NAMES


def _airflow_names(made: TaskFunction) -> TaskFunction:
    """A ``@task`` function of a DAG file may name any of Airflow's context variables as a
    parameter without a default (``def run_me(sleep_seconds, task_instance_key_str)``): a call
    need not give it, the try does (kept by ``override``, which copies the instance)."""
    made.context_names = _TASK_CONTEXT_NAMES
    return made


def _make(operator_class: type[PythonOperator], func: Callable[..., Any] | None, kwargs: dict[str, Any]) -> Any:
    if func is not None:
        return _airflow_names(TaskFunction(func, operator_class=operator_class, **kwargs))
    return lambda f: _airflow_names(TaskFunction(f, operator_class=operator_class, **kwargs))


task = _TaskDecorator()


class _DagFunction(FlowFunction):
    """``@dag``: calling the function builds (and registers) the DAG and returns it."""

    flow_class = DAG

    def build(self, **overrides: Any) -> Any:
        built = super().build(**overrides)
        if not built.doc and self.function.__doc__:
            built.doc = self.function.__doc__
        return built


def dag(dag_id: Any = "", **kwargs: Any) -> Any:
    """``@dag(schedule=..., start_date=...)`` over a function whose body creates the tasks."""
    if callable(dag_id):
        return _DagFunction(dag_id)

    def wrap(function: Callable[..., Any]) -> _DagFunction:
        return _DagFunction(function, flow_id=dag_id or None, **kwargs)

    return wrap


class _TaskGroupFunction:
    """A ``@task_group`` function: each call inside a DAG makes a group and runs the body in it."""

    def __init__(self, function: Callable[..., Any], **group_kwargs: Any) -> None:
        self.function = function
        self.group_kwargs = group_kwargs
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        group_id = self.group_kwargs.get("group_id") or self.function.__name__
        options = {k: v for k, v in self.group_kwargs.items() if k != "group_id"}
        options.setdefault("tooltip", (self.function.__doc__ or "").strip())
        with TaskGroup(group_id, add_suffix_on_collision=True, **options) as group:
            result = self.function(*args, **kwargs)
        return group if result is None else result

    def override(self, **kwargs: Any) -> _TaskGroupFunction:
        return _TaskGroupFunction(self.function, **{**self.group_kwargs, **kwargs})

    def expand(self, **mapped: Any) -> Any:
        """``grp.expand(x=[1, 2, 3])``: every task of the group once per item, instance ``i`` of
        a task after instance ``i`` of its upstream tasks in the group (``core.mapping``)."""
        return self._mapped({}, expand_input=mapped)

    def partial(self, **fixed: Any) -> _PartialTaskGroup:
        return _PartialTaskGroup(self, fixed)

    def expand_kwargs(self, source: Any) -> Any:
        return self._mapped({}, expand_kwargs_input=source)

    def _mapped(self, fixed: dict[str, Any], *, expand_input: Any = None, expand_kwargs_input: Any = None) -> Any:
        if expand_input is not None and not expand_input:
            refuse("@task_group(...).expand()", "expand() needs at least one argument")
        clash = sorted(set(expand_input or {}) & set(fixed))
        if clash:
            refuse(f"@task_group(...).expand({clash[0]}=...)", f"{clash[0]!r} is given to both partial() and expand()")
        group_id = self.group_kwargs.get("group_id") or self.function.__name__
        options = {k: v for k, v in self.group_kwargs.items() if k != "group_id"}
        options.setdefault("tooltip", (self.function.__doc__ or "").strip())
        with TaskGroup(group_id, add_suffix_on_collision=True, **options) as group:
            expander = MappedGroupExpander(
                task_id="expand", expand_input=expand_input, expand_kwargs_input=expand_kwargs_input
            )
            names = list(expand_input) if expand_input is not None else self._free_parameters(fixed)
            result = self.function(**fixed, **{n: MappedGroupArgument(expander, n) for n in names})
        expander.adopt([m for m in group.members if m is not expander])
        return group if result is None else result

    def _free_parameters(self, fixed: dict[str, Any]) -> list[str]:
        return [n for n in inspect.signature(self.function).parameters if n not in fixed]


class _PartialTaskGroup:
    """``grp.partial(y=1)``: arguments every instance of the mapped group gets as they are."""

    def __init__(self, group_function: _TaskGroupFunction, fixed: dict[str, Any]) -> None:
        self.group_function = group_function
        self.fixed = fixed

    def expand(self, **mapped: Any) -> Any:
        return self.group_function._mapped(self.fixed, expand_input=mapped)

    def expand_kwargs(self, source: Any) -> Any:
        return self.group_function._mapped(self.fixed, expand_kwargs_input=source)


def task_group(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    if python_callable is not None:
        return _TaskGroupFunction(python_callable, **kwargs)
    return lambda f: _TaskGroupFunction(f, **kwargs)


def setup(python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> Any:
    """``@setup``: a task that prepares what a teardown cleans up."""

    def make(f: Callable[..., Any]) -> TaskFunction:
        made = _airflow_names(TaskFunction(f, operator_class=_PythonDecoratedOperator, **kwargs))
        made.role = "setup"
        return made

    return make(python_callable) if python_callable is not None else make


def teardown(
    python_callable: Callable[..., Any] | None = None, *, on_failure_fail_dagrun: bool = False, **kwargs: Any
) -> Any:
    """``@teardown``: cleans up after its setups' work, even when the work failed."""

    def make(f: Callable[..., Any]) -> TaskFunction:
        made = _airflow_names(TaskFunction(f, operator_class=_PythonDecoratedOperator, **kwargs))
        made.role = "teardown"
        made.fail_run = on_failure_fail_dagrun
        return made

    return make(python_callable) if python_callable is not None else make


__all__ = ["dag", "setup", "task", "task_group", "teardown"]
