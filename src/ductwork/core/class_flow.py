"""Class tasks compiled to the common graph.

``compile_tasks`` walks ``requires()`` from root tasks and returns one ``NodeSpec`` per task
(complete tasks are kept, marked ``already_complete``, with their own requirements pruned).
``ClassTaskRunner`` is the executable the engine calls for such a node: it checks requirements,
fires the task's event handlers, runs it, and turns a ``yield`` of incomplete tasks into
``DynamicDependencies``. The flows built from class tasks (``ClassTaskFlow``,
``Flow.from_task``) are in ``core.flow``: they are flows, and this module knows none.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import time
import traceback
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.graph import CLASS_TASK, NodeSpec
from ductwork.core.signals import DynamicDependencies, FailNow, MissingInput, SkipTask
from ductwork.core.task import Event, Task, flatten, getpaths, is_external, walk
from ductwork.errors import DefinitionError, NotFoundError, TaskExecutionError, did_you_mean

ALREADY_COMPLETE = "already_complete"

log = logging.getLogger("ductwork")


_KINDS: weakref.WeakKeyDictionary[type, str] = weakref.WeakKeyDictionary()
"""Each task class's kind, worked out once: a pipeline of thousands of tasks has a handful."""


def task_kind(task: Task) -> str:
    """The Ductwork base class a task derives from, for display."""
    cls = type(task)
    kind = _KINDS.get(cls)
    if kind is None:
        from ductwork.core.external_program import ExternalProgramTask
        from ductwork.core.task import ExternalTask, WrapperTask

        bases = (ExternalProgramTask, WrapperTask, ExternalTask)
        kind = _KINDS[cls] = next((b.__name__ for b in bases if issubclass(cls, b)), "Task")
    return kind


HIDDEN_PARAMS = "hidden_params"
"""The extra of a node naming the parameters its class declared with a Luigi ``visibility`` other
than public (``HIDDEN``, ``PRIVATE``): the node keeps their values (a worker rebuilds the task from
them) and what shows a task's parameters (the API, the web UI's task page) shows them as ``***``,
as Luigi keeps them off its scheduler and visualiser."""


def hidden_params(cls: type[Task]) -> list[str]:
    """The names of ``cls``'s parameters that are not public (Luigi's ``ParameterVisibility``,
    an ``IntEnum`` whose ``PUBLIC`` is 0; Ductwork's own parameters have none and are public)."""
    return [name for name, param in cls.declared_params().items() if int(getattr(param, "visibility", 0) or 0)]


PLANNING_ERROR = "planning_error"
"""The extra of a node whose task could not be planned (``complete()`` or ``requires()``
raised): the line saying so. Its try fails at once with it (Luigi's "failed scheduling")."""


@dataclass(frozen=True)
class Unplanned:
    """A task that could not be planned: the line that says so, and the error met."""

    message: str
    error: BaseException


def planning_error(task: Task, method: str, exc: BaseException) -> str:
    """The line that says a task could not be planned: ``complete() of Report(...) raised
    RuntimeError: ...``, the first line of the error, as a summary and a try's error show it."""
    text = str(exc).strip().splitlines()
    detail = f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
    return f"{method}() of {task} raised {detail}"


def task_node(task: Task, deps: Iterable[Task], *, complete: bool = False, broken: str | None = None) -> NodeSpec:
    """``broken``: why the task could not be planned (``planning_error``); its node then has no
    upstream and no retries, and ``ClassTaskRunner`` fails its try at once with that line."""
    cls = type(task)
    cache = getattr(cls, "cache", None)
    if isinstance(cache, str) and cache == "content":
        # Set on the class it was ignored in silence: the class was never skipped by content.
        # (Only this value: a Luigi task may well keep a ``cache`` of its own, a dict say.)
        raise DefinitionError(
            f"{cls.get_task_family()}.cache = {cache!r}: cache= does not apply to class tasks, which are "
            "skipped when their outputs exist (complete()); use cache='content' on a Flow of operators or @task"
        )
    extra: dict[str, Any] = {}
    if complete:
        extra[ALREADY_COMPLETE] = True
    if is_external(task):
        extra["external"] = True
    file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    if file:
        extra["fileloc"] = file
    if broken is not None:
        extra[PLANNING_ERROR] = broken
    hidden = hidden_params(cls)
    if hidden:
        extra[HIDDEN_PARAMS] = hidden
    try:  # shown only: an output() or exists() that raises is for complete() and run() to meet
        targets = flatten(task.output())
        outputs = [repr(o) for o in targets]
        if outputs:
            extra["outputs"] = outputs[:20]
        if not complete and targets and broken is None and not is_external(task):
            # What ``ductwork why`` reports: the outputs that made the task run.
            missing = [repr(o) for o in targets[:20] if hasattr(o, "exists") and not o.exists()]
            if missing:
                extra["missing_outputs"] = missing
    except Exception as exc:
        if broken is None:
            raise
        log.debug("%s: outputs not listed: %s", task.task_id, exc)
    outlets = getattr(task, "outlets", None)
    if outlets:
        from ductwork.core.assets import as_assets

        extra["outlets"] = [a.uri for a in as_assets(outlets, where=task.task_id, name="outlets")]
    return NodeSpec(
        task_id=task.task_id,
        upstream=() if broken is not None else tuple(dict.fromkeys(d.task_id for d in deps)),
        kind=CLASS_TASK,
        operator=task_kind(task),
        retries=0 if broken is not None else _retries(task),
        retry_delay=float(getattr(task, "retry_delay", 0.0) or 0.0),
        execution_timeout=getattr(task, "execution_timeout", None),
        priority_weight=int(getattr(task, "priority", 0) or 0),
        resources=_resources(task),
        pool=getattr(task, "pool", "default_pool"),
        queue=str(getattr(task, "queue", "default") or "default"),
        executor_config=dict(getattr(task, "executor_config", {}) or {}),
        family=cls.get_task_family(),
        module=cls.__module__,
        params=task.all_str_params(),
        doc=(cls.__doc__ or "").strip().split("\n")[0],
        extra=extra,
    )


def _resources(task: Task) -> dict[str, int]:
    """Luigi's ``process_resources()`` when the class has one (it may work them out from the
    task's parameters), else its ``resources``."""
    process = getattr(task, "process_resources", None)
    return dict((process() if callable(process) else getattr(task, "resources", None)) or {})


def _retries(task: Task) -> int:
    """A task's ``retries``; a class without one gives Luigi's ``retry_count``, which counts
    the runs that may fail, the first one included (``retry_count = 1``: no retry)."""
    if hasattr(task, "retries"):
        return int(task.retries or 0)
    return max(0, int(getattr(task, "retry_count", 0) or 0) - 1)


def compile_tasks(
    roots: Iterable[Task],
    *,
    prune_complete: bool = True,
    known: Iterable[str] = (),
    broken: dict[str, Unplanned] | None = None,
    tell: bool = False,
) -> tuple[dict[str, NodeSpec], dict[str, Task]]:
    """Nodes and task objects for the requirement closure of ``roots``.

    Tasks whose ids are in ``known`` (already in the run's graph) are not walked again.
    ``broken``: a task whose ``complete()`` or ``requires()`` raises is added to it (by task
    id) and compiled as a node that fails at once, and the rest is planned
    as usual; None: the error propagates. ``tell``: such a task hears of it through its
    ``planning_failed(method, error, traceback)``, when it has one (the Luigi shim's tasks e-mail it,
    as Luigi's worker does), and every other task its ``planned(deps, complete)``, when it has
    one (the Luigi shim's fire the dependency events); a plan tells, a graph made for display does not.
    """
    skip = set(known)
    nodes: dict[str, NodeSpec] = {}
    tasks: dict[str, Task] = {}

    def note(task: Task, method: str, exc: Exception) -> None:
        assert broken is not None
        message = planning_error(task, method, exc)
        broken[task.task_id] = Unplanned(message, exc)
        log.warning("will not run %s or what needs it: %s", task, message)
        hook = getattr(task, "planning_failed", None) if tell else None
        if hook is not None:
            try:
                hook(method, exc, "".join(traceback.format_exception(exc)))
            except Exception:  # its e-mail must not stop the build
                log.exception("planning_failed of %s failed", task)

    for task, deps, complete in walk(roots, prune_complete=prune_complete, on_error=None if broken is None else note):
        if task.task_id in skip:
            continue
        planned = getattr(task, "planned", None) if tell and not (broken and task.task_id in broken) else None
        if planned is not None:
            planned(deps, complete)
        unplanned = broken.get(task.task_id) if broken else None
        message = unplanned.message if unplanned is not None else None
        nodes[task.task_id] = task_node(task, deps, complete=complete, broken=message)
        tasks[task.task_id] = task
    return inherit_priority(nodes), tasks


def inherit_priority(nodes: dict[str, NodeSpec]) -> dict[str, NodeSpec]:
    """The nodes, each as urgent as the most urgent task needing it, directly or not: Luigi's
    scheduler raises a requirement's ``priority`` to its dependents' (never lowers it), so that
    what a priority-100 task needs runs before priority-50 tasks; the engine orders by a node's
    own weight only. A cycle is left for the graph's check to report."""
    dependents: dict[str, list[str]] = {}
    for node in nodes.values():
        for up in node.upstream:
            if up in nodes:
                dependents.setdefault(up, []).append(node.task_id)
    effective: dict[str, int] = {}
    for start in nodes:
        stack = [(start, False)]
        while stack:
            task_id, ready = stack.pop()
            if task_id in effective:
                continue
            above = dependents.get(task_id, ())
            if ready:
                own = nodes[task_id].priority_weight
                effective[task_id] = max([own, *(effective.get(d, nodes[d].priority_weight) for d in above)])
            else:
                stack.append((task_id, True))
                stack.extend((d, False) for d in above if d not in effective)
    return {
        task_id: node
        if effective[task_id] == node.priority_weight
        else replace(node, priority_weight=effective[task_id])
        for task_id, node in nodes.items()
    }


def _absent_outputs(dep: Task) -> str:
    """A requirement found incomplete, with those of its outputs that do not exist, as Luigi's
    worker names them: "Partial (out/p2.txt)" says which file the requirement did not write."""
    try:
        absent = [str(o) for o in flatten(dep.output()) if hasattr(o, "exists") and not o.exists()]
    except Exception:  # the requirement's own error is for its complete() to meet
        absent = []
    return f"{dep.task_id} ({', '.join(absent)})" if absent else dep.task_id


class ClassTaskRunner:
    """The executable behind a class-task node."""

    template_fields: Sequence[str] = ()
    do_xcom_push = True

    def __init__(
        self,
        task: Task,
        deps: Sequence[Task] | None = None,
        *,
        broken: str | None = None,
        planning_exc: BaseException | None = None,
    ) -> None:
        """``deps``: the task's requirements as the run's graph was compiled from them (else
        ``requires()`` is asked again when the try runs). ``broken``: the task could not be
        planned (``planning_error``): its try fails at once, saying why, and runs nothing;
        its log shows the traceback of ``planning_exc``, the error met then."""
        self.task = task
        self.deps = deps
        self.broken = broken
        self.planning_exc = planning_exc
        self.task_id = task.task_id
        from ductwork.core.assets import as_assets

        self.outlets = as_assets(getattr(task, "outlets", None), where=task.task_id, name="outlets")
        """The class's ``outlets``: a successful try records an update of each, as an operator's do."""
        self.on_execute_callback: list[Callable[[TaskContext], Any]] = []
        self.on_success_callback: list[Callable[[TaskContext], Any]] = []
        self.on_failure_callback: list[Callable[[TaskContext], Any]] = []
        self.on_retry_callback: list[Callable[[TaskContext], Any]] = []
        self._told_lost = False
        """``on_lost`` told the handlers of this try's failure already (a timeout in-process)."""

    def execute(self, context: TaskContext) -> Any:
        task = self.task
        self._told_lost = False  # a retry's own failure is told as any other
        if self.broken is not None:
            raise FailNow(self.broken) from self.planning_exc
        if is_external(task):
            return self._check_external()
        switched_off = getattr(task, "_ductwork_disabled", None)  # a Luigi task's ``disabled``
        if switched_off is not None and switched_off():
            raise SkipTask(f"{task.task_id} is disabled: not run")
        missing = [d for d in (task.deps() if self.deps is None else self.deps) if not d.complete()]
        if missing:
            task.trigger_event(Event.DEPENDENCY_MISSING, missing)
            unfulfilled = TaskExecutionError(
                f"{task.task_id}: unfulfilled dependencies at run time: {', '.join(map(_absent_outputs, missing))}"
            )
            # The try fails: its FAILURE handlers (a Luigi task's on_failure and e-mail) hear of
            # it as of any other failure, as Luigi's worker tells them; they alone alert on it.
            task.trigger_event(Event.FAILURE, unfulfilled)
            raise unfulfilled
        task.trigger_event(Event.START)
        started = time.monotonic()
        try:
            result = self._run()
            after_run = getattr(task, "_ductwork_after_run", None)  # a Luigi task checks run() did its work
            if after_run is not None:
                after_run()
        except DynamicDependencies:
            raise
        except BaseException as exc:
            if not self._told_lost:
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
            new = flatten(requested)
            for item in new:  # dropped, the task went on without it and succeeded; Luigi fails it
                if not isinstance(item, Task):
                    generator.close()
                    raise TaskExecutionError(
                        f"{self.task}: run() must yield tasks (or lists or dicts of them, or "
                        f"DynamicRequirements), got {item!r} ({type(item).__name__})"
                    )
            incomplete = [t for t in new if not t.complete()]
            if incomplete:
                generator.close()
                raise DynamicDependencies(incomplete)
            to_send = getpaths(requested)

    def _check_external(self) -> None:
        if not self.task.complete():
            outputs = ", ".join(repr(o) for o in flatten(self.task.output())) or "(no outputs declared)"
            raise MissingInput(
                f"external dependency {self.task.task_id} is not complete; missing: {outputs}",
                recheck=float(getattr(self.task, "recheck_interval", 60.0) or 60.0),
            )

    def on_kill(self) -> None:
        self.task.on_kill()

    def on_lost(self, error: str, *, timed_out: bool) -> int:
        """Its try timed out or its worker died, so it could not tell its event handlers: they
        hear of the failure now (and of the timeout, for a task that listens for one, as
        Luigi's ``Event.TIMEOUT``/``PROCESS_FAILURE``). Returns 1 (the failure told)."""
        self._told_lost = True
        failure = TaskExecutionError(f"{self.task_id}: {error}")
        lost_hook = getattr(self.task, "lost_try", None)
        if lost_hook is not None:
            lost_hook(error, timed_out=timed_out)
        self.task.trigger_event(Event.FAILURE, failure)
        return 1

    def __repr__(self) -> str:
        return f"<ClassTaskRunner {self.task_id}>"


ImportFile = Callable[[str, str], ModuleType]
"""Imports a file (its path) as a module of the given name: ``loading.import_file`` above the core."""


def load_task(node: NodeSpec, *, import_file: ImportFile | None = None) -> Task:
    """Instantiate the class task a node was compiled from (in a worker or after a restart).

    A module that Python cannot import by name (a flow file imported by path) is imported from
    the node's file with ``import_file``, which the caller brings: importing files is done
    above the core.
    """
    if node.family is None or node.module is None:
        raise NotFoundError(f"node {node.task_id!r} is not a class task")
    module = _import_module(node.module, node.extra.get("fileloc"), import_file)
    cls = find_task_class(node.family, [module])
    return cls.from_str_params(dict(node.params))


def _import_module(name: str, fileloc: str | None, import_file: ImportFile | None) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    try:
        return importlib.import_module(name)
    except ImportError:
        if not fileloc or import_file is None:
            raise
    return import_file(fileloc, name)


def all_task_classes() -> list[type[Task]]:
    out: list[type[Task]] = []
    stack: list[type[Task]] = [Task]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            out.append(sub)
            stack.append(sub)
    return out


def _refuse_luigi_itself(family: str, module: Any) -> None:
    """A class of the module named ``family`` built on Luigi itself (installed beside Ductwork, a
    real Luigi wins over the shim) is not a Ductwork task: said as such, where "no task class
    named" of a class the module plainly defines sent the user looking for a typo."""
    candidate = getattr(module, family.rsplit(".", 1)[-1], None)
    if not isinstance(candidate, type) or issubclass(candidate, Task):
        return
    if not any(base.__module__.split(".")[0] == "luigi" for base in candidate.__mro__):
        return
    luigi = sys.modules.get("luigi")
    where = os.path.dirname(getattr(luigi, "__file__", None) or "") or "an installed package"
    raise NotFoundError(
        f"{family!r} of module {module.__name__} is a task class of Luigi itself ({where}), not of "
        "Ductwork's Luigi shim: an installed Luigi wins over the shim, and Ductwork runs its own task "
        "classes only; run it with the luigi command, or uninstall Luigi to run it with Ductwork"
    )


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
    for module in modules:
        _refuse_luigi_itself(family, module)
    names = sorted(n for n in matches if not n.startswith("ductwork."))
    raise NotFoundError(
        f"no task class named {family!r}.{did_you_mean(family, names)} "
        f"Known task classes: {', '.join(names[:20]) or '(none; did you pass --module?)'}"
    )
