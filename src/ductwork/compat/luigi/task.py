"""``luigi.task``: Luigi's ``Task``, ``WrapperTask``, ``ExternalTask`` and ``Config`` over
Ductwork's class tasks.

Differences from Ductwork's own ``Task`` are Luigi's: instances are cached (the same class and
parameters give the same object), task ids carry a hash of the parameters
(``Fib_100_a1b2c3d4e5``) while ``repr`` stays ``Fib(n=100)``, parameters come from ``luigi.cfg``
/ ``luigi.toml`` sections too, ``requires()`` must return tasks (anything else is an error, not
silently dropped), event names are Luigi's, and ``on_success``/``on_failure`` are called.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import re
import traceback
import warnings
from collections import ChainMap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from ductwork.core import task as core
from ductwork.core.config import ParamSources, use_sources
from ductwork.core.params import Parameter as CoreParameter
from ductwork.core.task import Event as CoreEvent
from ductwork.core.task import flatten, getpaths
from ductwork.errors import did_you_mean

from .parameter import ParameterVisibility, UnconsumedParameterWarning, luigi_text
from .task_register import Register

logger = logging.getLogger("luigi-interface")

TASK_ID_INCLUDE_PARAMS = 3
TASK_ID_TRUNCATE_PARAMS = 16
TASK_ID_TRUNCATE_HASH = 10
TASK_ID_INVALID_CHAR_REGEX = re.compile(r"[^A-Za-z0-9_]")
_SAME_AS_PYTHON_MODULE = "_same_as_python_module"


class TaskException(Exception):
    pass


class BulkCompleteNotImplementedError(NotImplementedError):
    """The task class has no ``bulk_complete``: its instances are checked one by one."""


def task_id_str(task_family: str, params: dict[str, str]) -> str:
    """``Family_<first three parameter values>_<hash>``: unique, readable, file-name safe."""
    param_str = json.dumps(params, separators=(",", ":"), sort_keys=True)
    param_hash = hashlib.md5(param_str.encode("utf-8"), usedforsecurity=False).hexdigest()
    summary = "_".join(params[p][:TASK_ID_TRUNCATE_PARAMS] for p in sorted(params)[:TASK_ID_INCLUDE_PARAMS])
    summary = TASK_ID_INVALID_CHAR_REGEX.sub("_", summary)
    return f"{task_family}_{summary}_{param_hash[:TASK_ID_TRUNCATE_HASH]}"


def namespace(namespace: str | None = None, scope: str = "") -> None:
    """Put the task classes defined after this call in ``scope``'s modules under ``namespace``."""
    Register._default_namespace_dict[scope] = namespace or ""


def auto_namespace(scope: str = "") -> None:
    namespace(namespace=_SAME_AS_PYTHON_MODULE, scope=scope)


_WARNED_UNCONSUMED: set[tuple[str, str]] = set()


def _warn_unconsumed(cls: type[Task]) -> None:
    """A key of a task's luigi.cfg section that is none of its parameters (``[Report] dayz``)
    is not read and its default is used: warn once per key, as Luigi does (the class's
    ``ignore_unconsumed`` names keys to pass over). Luigi's own sections (``[core]``,
    ``[worker]``...) hold options that have no parameter here, so they are left alone."""
    if cls.__module__.partition(".")[0] == "luigi":
        return
    from .configuration.core import LuigiConfigParser

    parser = LuigiConfigParser.instance()
    family = cls.get_task_family()
    if not parser.has_section(family):
        return
    params = cls.declared_params()
    ignored: set[str] = getattr(cls, "ignore_unconsumed", set())
    for key, value in parser.items(family, raw=True):
        name = key.replace("-", "_")
        if name in params or name in ignored or key in parser.defaults() or (family, name) in _WARNED_UNCONSUMED:
            continue
        _WARNED_UNCONSUMED.add((family, name))
        warnings.warn(
            f"The configuration contains the parameter '{name}' with value '{value}' that is not consumed "
            f"by the task '{family}'.{did_you_mean(name, params)}",
            UnconsumedParameterWarning,
            stacklevel=4,  # the line that made the task
        )


def _with_config_paths(cls: type[Task], sources: ParamSources) -> ParamSources:
    """The sources, where a parameter declared with ``config_path={"section": s, "name": n}``
    takes ``[s] n`` of the config files when its own section does not set it, as in Luigi."""
    paths: dict[str, dict[str, str]] = {}
    for name, param in cls.declared_params().items():
        if getattr(param, "config_path", None):
            paths[name] = param.config_path  # type: ignore[attr-defined]  # a Luigi parameter's
    if not paths:
        return sources
    found: dict[str, Any] = {}
    for name, path in paths.items():
        section = sources.file.get(path["section"], {})
        value = section.get(path["name"], section.get(path["name"].replace("-", "_")))
        if value is not None:
            found[name] = value
    file = dict(sources.file)  # the sections themselves are not read: a value is when used
    file[cls.section_name()] = ChainMap(file.get(cls.section_name(), {}), found)  # type: ignore[arg-type]
    return replace(sources, file=file)


class Task(core.Task, metaclass=Register):
    """A Luigi task: parameters, ``requires()``, ``output()``, ``run()``."""

    _event_callbacks: ClassVar[dict[str, list[Callable[..., Any]]]] = {}
    priority: int = 0
    disabled: bool = False
    resources: ClassVar[dict[str, int]] = {}
    worker_timeout: ClassVar[float | None] = None
    max_batch_size: ClassVar[float] = float("inf")
    retry_count: ClassVar[int | None] = None
    disable_hard_timeout: ClassVar[int | None] = None
    disable_window: ClassVar[int | None] = None
    owner_email: ClassVar[Any] = None
    accepts_messages: ClassVar[bool] = False
    task_namespace: ClassVar[str | None] = _SAME_AS_PYTHON_MODULE
    _ductwork_own_process: ClassVar[bool] = True
    """With ``--workers N`` (N > 1) or ``force_multiprocessing``, its ``run()`` is in a process
    of its own, as Luigi's worker runs it (``engine.forked``); Ductwork's own tasks use threads."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from .configuration.core import luigi_sources

        with use_sources(_with_config_paths(type(self), luigi_sources())):
            super().__init__(*args, **kwargs)
        _warn_unconsumed(type(self))
        self.param_kwargs = self.param_values()
        self.param_args = tuple(self.param_kwargs.values())
        self.set_tracking_url: Callable[[str], None] | None = None
        self.set_status_message: Callable[[str], None] | None = None
        self.set_progress_percentage: Callable[[float], None] | None = None

    # --- identity -----------------------------------------------------------------------------
    @classmethod
    def get_task_namespace(cls) -> str | None:
        """The class's ``task_namespace``, else what ``luigi.namespace()`` or
        ``luigi.auto_namespace()`` set for its module when the class was made."""
        if cls.task_namespace != _SAME_AS_PYTHON_MODULE:
            return cls.task_namespace
        at_class_time = cls.__dict__.get("_namespace_at_class_time")
        return cls.__module__ if at_class_time == _SAME_AS_PYTHON_MODULE else at_class_time

    @classmethod
    def get_task_family(cls) -> str:
        ns = cls.get_task_namespace()
        return f"{ns}.{cls.__name__}" if ns else cls.__name__

    @property
    def task_family(self) -> str:
        return self.get_task_family()

    @classmethod
    def configured_sources(cls) -> ParamSources:
        """Ductwork's sources with Luigi's command line and luigi.cfg/luigi.toml, and the
        ``config_path`` of its parameters, as ``__init__`` reads them."""
        from .configuration.core import luigi_sources

        return _with_config_paths(cls, luigi_sources())

    @classmethod
    def get_params(cls) -> list[tuple[str, CoreParameter[Any]]]:  # type: ignore[override]
        """``(name, parameter)`` pairs in declaration order, as Luigi returns them."""
        return list(cls.declared_params().items())

    @classmethod
    def declared_params(cls) -> dict[str, CoreParameter[Any]]:
        """Parameters by name, in declaration order (the order positional arguments bind in); a
        subclass setting an inherited parameter's name to ``None`` removes it."""
        cached = cls.__dict__.get("_luigi_params")
        if cached is not None:
            return cached
        found = {}
        for name in dir(cls):
            if name.startswith("__"):
                continue
            value = getattr(cls, name, None)
            if isinstance(value, CoreParameter):
                found[name] = value
        ordered = dict(sorted(found.items(), key=lambda item: getattr(item[1], "_counter", 0)))
        type.__setattr__(cls, "_luigi_params", ordered)
        return ordered

    @classmethod
    def get_param_names(cls, include_significant: bool = False) -> list[str]:
        return [n for n, p in cls.declared_params().items() if include_significant or p.significant]

    @classmethod
    def batch_param_names(cls) -> list[str]:
        return [n for n, p in cls.declared_params().items() if getattr(p, "batch_method", None) is not None]

    def to_str_params(self, only_significant: bool = False, only_public: bool = False) -> dict[str, str | None]:
        """The parameters as text, as Luigi gives them: a ``visibility=PRIVATE`` parameter is never
        among them (Luigi keeps it off the scheduler, its UI and its e-mails), so code that logs or
        sends these values does not leak it; ``all_str_params()`` has every parameter."""
        out: dict[str, str | None] = {}
        for name, param in type(self).declared_params().items():
            visibility = getattr(param, "visibility", ParameterVisibility.PUBLIC)
            if only_significant and not param.significant:
                continue
            if visibility == ParameterVisibility.PRIVATE:
                continue
            if only_public and visibility != ParameterVisibility.PUBLIC:
                continue
            out[name] = param.serialize_or_none(self.__dict__[name])
        return out

    def all_str_params(self) -> dict[str, str | None]:
        """Every parameter as text, private ones included: what tells two instances apart (the
        instance cache, batching) and what rebuilds the task where it runs."""
        return {
            name: param.serialize_or_none(self.__dict__[name]) for name, param in type(self).declared_params().items()
        }

    def _make_task_id(self) -> str:
        params = {
            name: luigi_text(param, self.__dict__[name])
            for name, param in type(self).declared_params().items()
            if param.significant
            and getattr(param, "visibility", ParameterVisibility.PUBLIC) == ParameterVisibility.PUBLIC
        }
        return task_id_str(type(self).get_task_family(), params)

    def __repr__(self) -> str:
        parts = [
            f"{name}={luigi_text(param, self.__dict__[name])}"
            for name, param in type(self).declared_params().items()
            if param.significant
        ]
        return f"{type(self).get_task_family()}({', '.join(parts)})"

    def __str__(self) -> str:
        return self.__repr__()

    def clone(self, cls: type[core.Task] | None = None, **kwargs: Any) -> Any:
        cls = cls or type(self)
        mine = self.param_values()
        shared = {k: v for k, v in mine.items() if k in cls.declared_params()}
        shared.update(kwargs)
        return cls(**shared)

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.param_values()))

    # --- the contract -------------------------------------------------------------------------
    @classmethod
    def bulk_complete(cls, parameter_tuples: Any) -> Any:
        """Which of many parameter values are complete, in one check (the ``luigi.tools.range``
        classes ask before checking one task at a time); not known unless a class says."""
        raise BulkCompleteNotImplementedError()

    def _requires(self) -> list[Any]:
        return flatten(self.requires())

    def deps(self) -> list[Any]:
        out = []
        for dep in flatten(self.requires()):
            if not isinstance(dep, core.Task):
                raise TaskException(
                    f"requires() of {self!r} must return Task objects, got {type(dep).__name__}: {dep!r}"
                )
            out.append(dep)
        return out

    def process_resources(self) -> dict[str, int]:
        return dict(self.resources)

    def on_failure(self, exception: BaseException) -> str:
        """Luigi's: the explanation of the failure, which the failure e-mail carries."""
        return "Runtime error:\n" + "".join(traceback.format_exception(exception))

    def on_success(self) -> None:
        pass

    def no_unpicklable_properties(self) -> Iterator[None]:
        yield

    # --- events -------------------------------------------------------------------------------
    @classmethod
    def event_handler(cls, event: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        name = str(getattr(event, "value", event))

        def register(callback: Callable[..., Any]) -> Callable[..., Any]:
            if "_event_callbacks" not in cls.__dict__:
                cls._event_callbacks = {}
            cls._event_callbacks.setdefault(name, []).append(callback)
            return callback

        return register

    def trigger_event(self, event: Any, *args: Any, **kwargs: Any) -> None:
        """Call the callbacks registered for ``event`` with ``args``, as Luigi does. The engine
        announces its moments (start, success...) with Ductwork's ``Event`` members; as Luigi's
        worker does, their callbacks get the task first, and ``on_failure``/``on_success`` run;
        after a failure, Luigi's failure e-mail is sent (when ``[email] receiver`` is set)."""
        name = str(getattr(event, "value", event))
        failed = False
        explanation: Any = None
        if isinstance(event, CoreEvent):
            if event is CoreEvent.DEPENDENCY_MISSING:
                return  # unfulfilled requirements at run time: Luigi's worker fires no event for them
            if name == "start":
                self._give_status_reporters()
            elif name == "failure" and args:
                failed = True  # on_failure after the FAILURE handlers, as Luigi's worker calls them
            elif name == "success":
                self.on_success()
            args = (self, *args)
        for klass in type(self).__mro__:
            for callback in klass.__dict__.get("_event_callbacks", {}).get(name, ()):
                try:
                    callback(*args, **kwargs)
                except Exception:
                    logger.warning("Error in event callback for %r", name, exc_info=True)
        if failed:
            import importlib

            # Looked up when a task fails: ``notifications`` is built on this module (its
            # configuration classes are Tasks), so a plain import here would make a circle.
            notifications = importlib.import_module(f"{__package__}.notifications")
            explanation = self.on_failure(args[1])
            notifications.email_task_failure(self, None if explanation is None else str(explanation))

    def _ductwork_disabled(self) -> bool:
        """Ductwork's hook before a try runs: Luigi's ``disabled`` (a task switched off is not
        run, and what needs it is not either), asked under ``ductwork build`` and the
        scheduler, which ran it."""
        return bool(self.disabled)

    def _ductwork_after_run(self) -> None:
        """Ductwork's hook for a ``run()`` that returned: with ``[worker] check_complete_on_run``
        the task fails unless ``complete()`` now says it is done, as Luigi's worker fails it
        (the setting was accepted and not applied: such a task counted as a success)."""
        if _worker_config().check_complete_on_run and not self.complete():
            raise TaskException("Task finished running, but complete() is still returning false.")

    def lost_try(self, error: str, *, timed_out: bool) -> None:
        """Ductwork's hook for a try that timed out or whose process died (the scheduler tells
        the task afterwards): Luigi's ``Event.TIMEOUT`` or ``Event.PROCESS_FAILURE``, with the
        task and the message, as Luigi's worker fires them; ``FAILURE`` follows."""
        from .event import Event

        if timed_out:  # said on the terminal as Luigi's worker says it: the failure is silent else
            logger.info("Task %s timed out and was terminated: %s", self.task_id, error)
        self.trigger_event(Event.TIMEOUT if timed_out else Event.PROCESS_FAILURE, self, error)

    def planned(self, deps: list[Any], complete: bool) -> None:
        """Ductwork's hook for a task as ``ductwork build`` (or a run of ``Flow.from_task``)
        plans it: the events Luigi's worker fires as it adds the task, so that a
        ``DEPENDENCY_MISSING`` handler hears of missing external data there too."""
        from .event import Event

        if complete:
            self.trigger_event(Event.DEPENDENCY_PRESENT, self)
        elif core.is_external(self):
            self.trigger_event(Event.DEPENDENCY_MISSING, self)
        else:
            for dep in deps:
                self.trigger_event(Event.DEPENDENCY_DISCOVERED, self, dep)

    def planning_failed(self, method: str, error: Exception, formatted_traceback: str) -> None:
        """Ductwork's hook for a task whose ``complete()`` (``method`` "complete") or
        ``requires()`` ("requires") raised while ``ductwork build`` planned the build: the
        events and the "failed scheduling" e-mail of Luigi's worker, as ``luigi.build`` gives."""
        import importlib

        from .event import Event

        notifications = importlib.import_module(f"{__package__}.notifications")
        if method == "complete":
            self.trigger_event(Event.DEPENDENCY_MISSING, self)
            notifications.email_scheduling_failure(self, "complete", formatted_traceback)
        else:
            self.trigger_event(Event.BROKEN_TASK, self, error)
            notifications.email_scheduling_failure(self, "deps", formatted_traceback)

    def _give_status_reporters(self) -> None:
        """What Luigi's worker gives a task it starts: ``set_tracking_url``,
        ``set_status_message`` and ``set_progress_percentage``. Ductwork has no place to show
        them, so they are logged, in the try's log (on the terminal under ``luigi``)."""
        self.set_tracking_url = lambda url: logger.info("%s tracking URL: %s", self, url)
        self.set_status_message = lambda message: logger.info("%s status message: %s", self, message)
        self.set_progress_percentage = lambda percent: logger.info("%s progress: %s%%", self, percent)

    @property
    def execution_timeout(self) -> float | None:  # type: ignore[override]
        """The task's ``worker_timeout``, else ``[worker] timeout`` (``--worker-timeout``), as
        Luigi's worker decides it; 0 is no limit. The setting was accepted and not applied, so
        a hung task ran on where Luigi stopped it and failed it."""
        if self.worker_timeout is not None:
            return self.worker_timeout or None
        return _worker_config().timeout or None

    @property
    def retries(self) -> int:  # type: ignore[override]
        """Luigi's ``retry_count`` counts runs that fail before the task is given up, the first
        one included: ``retry_count = 1`` runs once. In a build, the build's policy decides."""
        policy = RetryPolicy.current
        if policy is not None:
            return policy.retries_of(self)
        return max(0, int(self.retry_count or 0) - 1)

    @property
    def retry_delay(self) -> float:  # type: ignore[override]
        policy = RetryPolicy.current
        return policy.delay if policy is not None else 0.0


def _worker_config() -> Any:
    """Luigi's ``[worker]`` section as it reads now. Its class is a ``Config``, a Task of this
    module: looked up when asked, as ``notifications`` is, so the modules make no circle."""
    return importlib.import_module(f"{__package__}._config").worker()


@dataclass(frozen=True)
class RetryPolicy:
    """How often a build runs a failing task, as a Luigi worker does: once, unless the worker
    is kept alive or the scheduler's retry delay is 0; then up to ``retry_count`` runs in all
    (the task's, else ``[scheduler] retry_count``, capped at ``unbounded_tries``), ``delay``
    seconds apart. ``current`` is the policy of the build running in this process, which also
    rules the tasks that ``run()`` yields."""

    retrying: bool
    delay: float
    default_tries: int
    unbounded_tries: ClassVar[int] = 4
    """Luigi retries practically forever by default (999999999 runs); a build stops sooner."""
    current: ClassVar[RetryPolicy | None] = None

    def retries_of(self, task: Task) -> int:
        if not self.retrying:
            return 0
        tries = task.retry_count if task.retry_count is not None else min(self.default_tries, self.unbounded_tries)
        return max(0, tries - 1)

    @contextmanager
    def applied(self) -> Iterator[None]:
        previous, RetryPolicy.current = RetryPolicy.current, self
        try:
            yield
        finally:
            RetryPolicy.current = previous


class MixinNaiveBulkComplete:
    """A ``bulk_complete`` that checks each task's ``complete()``: correct, not fast."""

    @classmethod
    def bulk_complete(cls, parameter_tuples: Any) -> list[Any]:
        make: Any = cls  # mixed into a Task class
        done = []
        for values in parameter_tuples:
            if isinstance(values, dict):
                task = make(**values)
            elif isinstance(values, tuple):
                task = make(*values)
            else:
                task = make(values)
            if task.complete():
                done.append(values)
        return done


def flatten_output(task: Any) -> list[Any]:
    """The output targets of ``task``; a task without outputs (a wrapper) stands for the outputs
    of what it requires, recursively, each task once."""
    seen: dict[Any, None] = {}
    pending = [task]
    while pending:
        current = pending.pop(0)
        if flatten(current.output()):
            seen.setdefault(current, None)
        else:
            pending.extend(flatten(current.requires()))
    return [target for found in seen for target in flatten(found.output())]


def _rebuild(cls: type[Task], values: dict[str, Any]) -> Task:
    return cls(**values)


class WrapperTask(Task):
    """Only groups requirements; complete when they all are."""

    def complete(self) -> bool:
        return all(r.complete() for r in flatten(self.requires()))


class ExternalTask(Task):
    """Data made outside the pipeline: never run, only checked (missing means pending)."""

    run = None  # type: ignore[assignment]


class Config(Task):
    """A group of settings read from ``[ClassName]`` of ``luigi.cfg``/``luigi.toml``, the
    environment or ``--ClassName-param`` options; not a task to run."""

    _visible_in_registry = False


class DynamicRequirements:
    """``yield DynamicRequirements(tasks, custom_complete)`` from ``run()``: require more tasks."""

    def __init__(self, requirements: Any, custom_complete: Callable[..., bool] | None = None) -> None:
        self.requirements = requirements
        self.custom_complete = custom_complete
        self.flat_requirements = flatten(requirements)
        self.paths = getpaths(requirements)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.flat_requirements)

    def complete(self, complete_fn: Callable[[Any], bool] | None = None) -> bool:
        check = complete_fn or (lambda task: task.complete())
        if self.custom_complete is not None:
            return self.custom_complete(check)
        return all(check(t) for t in self.flat_requirements)


def externalize(taskclass_or_taskobject: Any) -> Any:
    """A copy of a task (or class) whose ``run`` is ``None``: checked, never run."""
    import copy

    copied = copy.copy(taskclass_or_taskobject)
    if isinstance(copied, type):
        copied = type(copied.__name__, (copied,), {"run": None, "__module__": copied.__module__})
    else:
        copied.run = None
    return copied


__all__ = [
    "BulkCompleteNotImplementedError",
    "Config",
    "MixinNaiveBulkComplete",
    "RetryPolicy",
    "DynamicRequirements",
    "ExternalTask",
    "Task",
    "TaskException",
    "WrapperTask",
    "auto_namespace",
    "externalize",
    "flatten",
    "flatten_output",
    "getpaths",
    "namespace",
    "task_id_str",
]
