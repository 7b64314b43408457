"""Class tasks, Luigi's model: ``requires()``, ``output()``, ``run()``.

A task's identity is its family plus its significant parameters: ``Report(date=d)`` built
twice is the same task, and a task whose outputs all exist is complete and is not run again.
``run()`` may ``yield`` further tasks (dynamic dependencies); the engine runs them first and
then calls ``run()`` again, exactly as Luigi does.

Class tasks compile to nodes of the same ``FlowGraph`` as every other style (see
``class_flow``); nothing in the engine is specific to them.
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Any, ClassVar

from ductwork.core.config import ParamHolder, ParamSources
from ductwork.core.targets import Target
from ductwork.errors import DefinitionError, ParameterError

logger = logging.getLogger("ductwork.task")

_MAX_ID_LENGTH = 160


class Event(StrEnum):
    """Moments a class task's event handlers can hook into (Luigi's ``luigi.Event``)."""

    START = "start"
    SUCCESS = "success"
    FAILURE = "failure"
    PROCESSING_TIME = "processing_time"
    DEPENDENCY_MISSING = "dependency_missing"


def flatten(struct: Any) -> list[Any]:
    """Tasks or targets from one value, a list/tuple or a dict (values), depth first."""
    if struct is None:
        return []
    out: list[Any] = []
    kind = type(struct)  # the usual shapes first: the abstract-class checks below are slow
    if kind is list or kind is tuple:
        for value in struct:
            out.extend(flatten(value))
        return out
    if isinstance(struct, Task):
        return [struct]
    if isinstance(struct, Mapping):
        for value in struct.values():
            out.extend(flatten(value))
        return out
    if isinstance(struct, list | tuple | set | frozenset) or (
        isinstance(struct, Iterable) and not isinstance(struct, str | bytes | Task) and not _is_target(struct)
    ):
        for value in struct:
            out.extend(flatten(value))
        return out
    return [struct]


_HANDLERS: weakref.WeakKeyDictionary[type, dict[Event, tuple[Callable[..., Any], ...]]] = weakref.WeakKeyDictionary()
"""Each class's handlers of each event, its bases' included; emptied when one is registered."""


def _is_target(value: Any) -> bool:
    return isinstance(value, Target)


def getpaths(struct: Any) -> Any:
    """The outputs of the tasks in ``struct``, in the same shape (what ``input()`` returns)."""
    if isinstance(struct, Task):
        return struct.output()
    if isinstance(struct, Mapping):
        return {k: getpaths(v) for k, v in struct.items()}
    if isinstance(struct, list | tuple):
        return type(struct)(getpaths(v) for v in struct)
    if struct is None:
        return None
    if isinstance(struct, Iterable) and not isinstance(struct, str | bytes):
        return [getpaths(v) for v in struct]
    return struct


class Task(ParamHolder):
    """A unit of work with parameters, requirements, outputs and a ``run()`` method.

    Class attributes tune how the engine treats it: ``priority`` (higher runs first),
    ``resources`` (``{"db": 1}``: named limits shared by all runs), ``retries`` and
    ``retry_delay`` (seconds), ``execution_timeout`` (seconds), and ``task_namespace``.
    """

    task_namespace: ClassVar[str | None] = None
    priority: int = 0
    resources: ClassVar[Mapping[str, int]] = {}
    retries: ClassVar[int] = 0
    retry_delay: ClassVar[float] = 0.0
    execution_timeout: ClassVar[float | None] = None
    pool: ClassVar[str] = "default_pool"
    queue: ClassVar[str] = "default"
    """The worker queue its tries go to (Celery workers started with ``--queues``)."""
    executor_config: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.task_id = self._make_task_id()
        self._hash = hash((type(self).get_task_family(), self.task_id))

    # --- identity ---------------------------------------------------------------------------
    @classmethod
    def get_task_family(cls) -> str:
        return f"{cls.task_namespace}.{cls.__name__}" if cls.task_namespace else cls.__name__

    @classmethod
    def section_name(cls) -> str:
        return cls.get_task_family()

    @classmethod
    def configured_sources(cls) -> ParamSources:
        """Where this class's parameters that are not given are read from (``--Cls-param``,
        the environment, the config file): what its ``__init__`` consults. The Luigi shim's
        tasks add luigi.cfg/luigi.toml."""
        from ductwork.core.config import current_sources

        return current_sources()

    def _make_task_id(self) -> str:
        params = self.to_str_params(only_significant=True)
        family = type(self).get_task_family()
        if not params:
            return family
        inner = ", ".join(f"{k}={'' if v is None else v}" for k, v in params.items())
        task_id = f"{family}({inner})"
        if len(task_id) <= _MAX_ID_LENGTH:
            return task_id
        digest = hashlib.sha256(task_id.encode()).hexdigest()[:10]
        return f"{task_id[: _MAX_ID_LENGTH - 14]}...){digest}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and type(other) is type(self) and other.task_id == self.task_id

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return self.task_id

    def clone(self, cls: type[Task] | None = None, **kwargs: Any) -> Any:
        """A task of ``cls`` (default: this class) sharing this task's parameters that it has."""
        cls = cls or type(self)
        shared = {k: v for k, v in self.param_values().items() if k in cls.declared_params()}
        shared.update(kwargs)
        return cls(**shared)

    # --- the contract -----------------------------------------------------------------------
    def requires(self) -> Any:
        """The tasks this one needs: one task, a list, or a dict of tasks."""
        return []

    def output(self) -> Any:
        """The targets this task produces: one, a list, or a dict."""
        return []

    def run(self) -> Any:
        """Do the work; may ``yield`` tasks to require them dynamically."""

    def complete(self) -> bool:
        """Whether every output exists; a task without outputs is never complete."""
        outputs = flatten(self.output())
        return bool(outputs) and all(t.exists() for t in outputs)

    def input(self) -> Any:
        """The outputs of ``requires()``, in the same shape."""
        return getpaths(self.requires())

    def deps(self) -> list[Task]:
        """The tasks ``requires()`` returns. Anything else in it is refused, as Luigi refuses it
        (``requires() must return Task objects``): a mistyped ``return "Events"`` or a target was
        dropped, and the task ran without the input it needed."""
        found = flatten(self.requires())
        for item in found:
            if not isinstance(item, Task):
                raise DefinitionError(
                    f"{self}: requires() must return tasks (or lists or dicts of them), got {item!r} "
                    f"({type(item).__name__})"
                )
        return found

    # --- events -----------------------------------------------------------------------------
    @classmethod
    def event_handler(cls, event: Event | str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Register a handler on this class (and its subclasses): ``@Report.event_handler(Event.SUCCESS)``."""
        event = Event(event)

        def register(func: Callable[..., Any]) -> Callable[..., Any]:
            handlers: dict[Event, list[Callable[..., Any]]] = cls.__dict__.get("_event_handlers") or {}
            if "_event_handlers" not in cls.__dict__:
                cls._event_handlers = handlers  # type: ignore[attr-defined]
            handlers.setdefault(event, []).append(func)
            _HANDLERS.clear()
            return func

        return register

    def trigger_event(self, event: Event, *args: Any) -> None:
        """Call the handlers for ``event`` registered on this class or its bases.

        A failing handler is logged and does not change the task's outcome (Luigi's rule).
        """
        cls = type(self)
        known = _HANDLERS.get(cls)
        if known is None:
            known = _HANDLERS[cls] = {}
        handlers = known.get(event)
        if handlers is None:  # looked up along the class's bases once, not three times per task
            found = (klass.__dict__.get("_event_handlers", {}).get(event, ()) for klass in cls.__mro__)
            handlers = known[event] = tuple(h for group in found for h in group)
        for handler in handlers:
            try:
                handler(self, *args)
            except Exception:
                logger.exception("event handler %s for %s of %s failed", handler, event, self)

    def on_kill(self) -> None:
        """Stop outside work when the try is cancelled or times out."""


class WrapperTask(Task):
    """A task that only groups requirements; complete when they all are."""

    def complete(self) -> bool:
        return all(t.complete() for t in self.deps())


class ExternalTask(Task):
    """Data produced outside the pipeline; never run, only checked for completeness."""

    run = None  # type: ignore[assignment]


def is_external(task: Task) -> bool:
    return getattr(type(task), "run", None) is None


PlanningErrorHandler = Callable[["Task", str, Exception], None]
"""Told of a task whose ``complete()`` or ``requires()`` raised while a plan was walked: the
task, the method's name (``"complete"``, ``"requires"``) and the error."""


def walk(
    roots: Iterable[Task], *, prune_complete: bool = True, on_error: PlanningErrorHandler | None = None
) -> Iterator[tuple[Task, list[Task], bool]]:
    """Each task of the requirement closure once: ``(task, deps, complete)``.

    With ``prune_complete`` the requirements of a complete task are not visited (they need not
    run), which is what lets a 1,000-task pipeline that is already built finish in one check.

    ``on_error``: a task whose ``complete()`` or ``requires()`` raises is told to it and yielded
    as not complete, without requirements, and the walk goes on to the other tasks, as Luigi's
    worker schedules around a task whose scheduling failed (a database down for one check must
    not stop the whole build). Without it the error propagates. A ``DefinitionError`` or
    ``ParameterError`` (a task made in ``requires()`` with a bad parameter: the pipeline as
    written is wrong) always propagates.
    """
    seen: set[Task] = set()
    stack = list(roots)[::-1]
    while stack:
        task = stack.pop()
        if task in seen:
            continue
        seen.add(task)
        method = "complete"
        try:
            complete = task.complete() if prune_complete else False
            method = "requires"
            deps = [] if complete else task.deps()
        except (DefinitionError, ParameterError):
            raise
        except Exception as exc:
            if on_error is None:
                raise
            on_error(task, method, exc)
            complete, deps = False, []
        yield task, deps, complete
        stack.extend(d for d in reversed(deps) if d not in seen)
