"""Class tasks compiled to the common graph, and flows built from them.

``compile_tasks`` walks ``requires()`` from root tasks and returns one ``NodeSpec`` per task
(complete tasks are kept, marked ``already_complete``, with their own requirements pruned).
``ClassTaskRunner`` is the executable the engine calls for such a node: it checks requirements,
fires the task's event handlers, runs it, and turns a ``yield`` of incomplete tasks into
``DynamicDependencies``. ``ClassTaskFlow`` gives Luigi pipelines a schedule:
``Flow.from_task(Report, schedule="@daily", date_param="date")``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.flow import Flow
from ductwork.core.graph import CLASS_TASK, FlowGraph, NodeSpec, topological
from ductwork.core.params import DateParameter, DateTimeParameter, MonthParameter, Parameter
from ductwork.core.signals import DynamicDependencies
from ductwork.core.task import Event, Task, flatten, getpaths, is_external, walk
from ductwork.errors import DefinitionError, NotFoundError, TaskExecutionError, did_you_mean

ALREADY_COMPLETE = "already_complete"


def task_kind(task: Task) -> str:
    """The Ductwork base class a task derives from, for display."""
    from ductwork.core.external_program import ExternalProgramTask
    from ductwork.core.task import ExternalTask, WrapperTask

    for base in (ExternalProgramTask, WrapperTask, ExternalTask):
        if isinstance(task, base):
            return base.__name__
    return "Task"


def task_node(task: Task, deps: Iterable[Task], *, complete: bool = False) -> NodeSpec:
    cls = type(task)
    extra: dict[str, Any] = {}
    if complete:
        extra[ALREADY_COMPLETE] = True
    if is_external(task):
        extra["external"] = True
    file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if file:
        extra["fileloc"] = file
    outputs = [repr(o) for o in flatten(task.output())]
    if outputs:
        extra["outputs"] = outputs[:20]
    return NodeSpec(
        task_id=task.task_id,
        upstream=tuple(dict.fromkeys(d.task_id for d in deps)),
        kind=CLASS_TASK,
        operator=task_kind(task),
        retries=int(getattr(task, "retries", 0) or getattr(task, "retry_count", 0) or 0),
        retry_delay=float(getattr(task, "retry_delay", 0.0) or 0.0),
        execution_timeout=getattr(task, "execution_timeout", None),
        priority_weight=int(getattr(task, "priority", 0) or 0),
        resources=dict(getattr(task, "resources", {}) or {}),
        pool=getattr(task, "pool", "default_pool"),
        family=cls.get_task_family(),
        module=cls.__module__,
        params=task.to_str_params(),
        doc=(cls.__doc__ or "").strip().split("\n")[0],
        extra=extra,
    )


def compile_tasks(
    roots: Iterable[Task], *, prune_complete: bool = True, known: Iterable[str] = ()
) -> tuple[dict[str, NodeSpec], dict[str, Task]]:
    """Nodes and task objects for the requirement closure of ``roots``.

    Tasks whose ids are in ``known`` (already in the run's graph) are not walked again.
    """
    skip = set(known)
    nodes: dict[str, NodeSpec] = {}
    tasks: dict[str, Task] = {}
    for task, deps, complete in walk(roots, prune_complete=prune_complete):
        if task.task_id in skip:
            continue
        nodes[task.task_id] = task_node(task, deps, complete=complete)
        tasks[task.task_id] = task
    return nodes, tasks


class ClassTaskRunner:
    """The executable behind a class-task node."""

    template_fields: Sequence[str] = ()
    do_xcom_push = True

    def __init__(self, task: Task) -> None:
        self.task = task
        self.task_id = task.task_id
        self.on_execute_callback: list[Callable[[TaskContext], Any]] = []
        self.on_success_callback: list[Callable[[TaskContext], Any]] = []
        self.on_failure_callback: list[Callable[[TaskContext], Any]] = []
        self.on_retry_callback: list[Callable[[TaskContext], Any]] = []

    def execute(self, context: TaskContext) -> Any:
        task = self.task
        if is_external(task):
            return self._check_external()
        missing = [d for d in task.deps() if not d.complete()]
        if missing:
            task.trigger_event(Event.DEPENDENCY_MISSING, missing)
            raise TaskExecutionError(
                f"{task.task_id}: unfulfilled dependencies at run time: {', '.join(d.task_id for d in missing)}"
            )
        task.trigger_event(Event.START)
        started = time.monotonic()
        try:
            result = self._run()
        except DynamicDependencies:
            raise
        except BaseException as exc:
            task.trigger_event(Event.FAILURE, exc)
            raise
        task.trigger_event(Event.PROCESSING_TIME, time.monotonic() - started)
        task.trigger_event(Event.SUCCESS)
        return result

    def _run(self) -> Any:
        outcome = self.task.run()
        if not hasattr(outcome, "send") or not hasattr(outcome, "throw"):
            return outcome
        generator: Any = outcome
        to_send: Any = None
        while True:
            try:
                requested = generator.send(to_send)
            except StopIteration as stop:
                return stop.value
            new = [t for t in flatten(requested) if isinstance(t, Task)]
            incomplete = [t for t in new if not t.complete()]
            if incomplete:
                generator.close()
                raise DynamicDependencies(incomplete)
            to_send = getpaths(requested)

    def _check_external(self) -> None:
        if not self.task.complete():
            outputs = ", ".join(repr(o) for o in flatten(self.task.output())) or "(no outputs declared)"
            raise TaskExecutionError(f"external dependency {self.task.task_id} is not complete; missing: {outputs}")

    def on_kill(self) -> None:
        self.task.on_kill()

    def __repr__(self) -> str:
        return f"<ClassTaskRunner {self.task_id}>"


def load_task(node: NodeSpec) -> Task:
    """Instantiate the class task a node was compiled from (in a worker or after a restart)."""
    if node.family is None or node.module is None:
        raise NotFoundError(f"node {node.task_id!r} is not a class task")
    module = _import_module(node.module, node.extra.get("fileloc"))
    cls = find_task_class(node.family, [module])
    return cls.from_str_params(dict(node.params))


def _import_module(name: str, fileloc: str | None) -> Any:
    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except ImportError:
        if not fileloc:
            raise
    from ductwork.loading import import_file

    return import_file(fileloc, module_name=name)


def all_task_classes() -> list[type[Task]]:
    out: list[type[Task]] = []
    stack: list[type[Task]] = [Task]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            out.append(sub)
            stack.append(sub)
    return out


def find_task_class(family: str, modules: Sequence[Any] = ()) -> type[Task]:
    """A task class by family name: an attribute of one of ``modules`` first, then any loaded
    subclass of ``Task`` with that family."""
    for module in modules:
        candidate = getattr(module, family.rsplit(".", 1)[-1], None)
        if isinstance(candidate, type) and issubclass(candidate, Task) and candidate.get_task_family() == family:
            return candidate
    matches = {c.get_task_family(): c for c in all_task_classes()}
    if family in matches:
        return matches[family]
    names = sorted(n for n in matches if not n.startswith("ductwork."))
    raise NotFoundError(
        f"no task class named {family!r}.{did_you_mean(family, names)} "
        f"Known task classes: {', '.join(names[:20]) or '(none; did you pass --module?)'}"
    )


class ClassTaskFlow(Flow):
    """A flow whose graph is discovered, per run, from a root class task."""

    def __init__(
        self,
        flow_id: str,
        *,
        root: Callable[[Mapping[str, Any], dt.datetime], list[Task]],
        root_params: Mapping[str, Parameter[Any]],
        **flow_kwargs: Any,
    ) -> None:
        super().__init__(flow_id, params=dict(root_params), **flow_kwargs)
        self._root = root

    @property
    def style(self) -> str:
        return "class_tasks"

    def roots_for(self, params: Mapping[str, Any], logical_date: dt.datetime) -> list[Task]:
        return self._root(params, logical_date)

    def materialize(
        self, *, params: Mapping[str, Any], logical_date: dt.datetime
    ) -> tuple[FlowGraph, Mapping[str, Any]]:
        nodes, tasks = compile_tasks(self.roots_for(params, logical_date))
        graph = FlowGraph(self.meta(), topological(nodes, where=f"flow {self.flow_id!r}"))
        return graph, {task_id: ClassTaskRunner(t) for task_id, t in tasks.items()}

    def to_graph(self) -> FlowGraph:
        """The full requirement graph for the default parameters and today's date (display)."""
        params = {n: p.default for n, p in self.params.items() if not p.required}
        missing = [n for n, p in self.params.items() if p.required]
        if missing:
            return FlowGraph(self.meta(), {})
        roots = self.roots_for(params, dt.datetime.now(self.tz))
        nodes, _ = compile_tasks(roots, prune_complete=False)
        return FlowGraph(self.meta(), topological(nodes, where=f"flow {self.flow_id!r}"))

    def resolve_operator(self, node: NodeSpec) -> Any:
        return ClassTaskRunner(load_task(node))


def _date_value(param: Parameter[Any], logical_date: dt.datetime) -> Any:
    if isinstance(param, DateTimeParameter):
        return logical_date
    if isinstance(param, DateParameter | MonthParameter):
        return logical_date.date()
    return param.serialize(logical_date.date()) if type(param) is Parameter else logical_date


def flow_from_task(
    task_cls: type[Task],
    *,
    flow_id: str | None = None,
    date_param: str | None = None,
    **flow_kwargs: Any,
) -> ClassTaskFlow:
    """A scheduled flow whose runs build ``task_cls`` for the run's logical date.

    ``date_param`` names the task parameter that receives the logical date; the task's other
    parameters become the flow's run parameters, with their types.
    """
    if not (isinstance(task_cls, type) and issubclass(task_cls, Task)):
        raise DefinitionError(f"Flow.from_task() wants a Task subclass, got {task_cls!r}")
    declared = task_cls.get_params()
    if date_param is not None and date_param not in declared:
        raise DefinitionError(
            f"Flow.from_task({task_cls.__name__}): date_param {date_param!r} is not a parameter of "
            f"{task_cls.__name__}.{did_you_mean(date_param, declared)}"
        )
    run_params = {n: p for n, p in declared.items() if n != date_param}

    def root(params: Mapping[str, Any], logical_date: dt.datetime) -> list[Task]:
        kwargs = dict(params)
        if date_param is not None:
            kwargs[date_param] = _date_value(declared[date_param], logical_date)
        return [task_cls(**kwargs)]

    flow = ClassTaskFlow(
        flow_id or task_cls.get_task_family(),
        root=root,
        root_params=run_params,
        **flow_kwargs,
    )
    flow.description = flow.description or (task_cls.__doc__ or "").strip().split("\n")[0]
    return flow


def flow_for_tasks(tasks: Sequence[Task], *, flow_id: str | None = None) -> ClassTaskFlow:
    """An unscheduled flow that builds these task instances (``ductwork build``)."""
    roots = list(tasks)
    if not roots:
        raise DefinitionError("nothing to build: no tasks given")
    name = flow_id or ("build." + roots[0].get_task_family())
    return ClassTaskFlow(name, root=lambda _p, _d: roots, root_params={})
