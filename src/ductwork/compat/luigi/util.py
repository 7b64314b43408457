"""``luigi.util``: ``inherits``, ``requires``, ``copies``, ``delegates``, ``common_params``."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import Any

from ductwork.core.task import flatten

from .task import Task

logger = logging.getLogger("luigi-interface")


def common_params(task_instance: Task, task_cls: type[Task]) -> dict[str, Any]:
    """The parameter values of ``task_instance`` that ``task_cls`` also has."""
    if not isinstance(task_cls, type) or not issubclass(task_cls, Task):
        raise TypeError("task_cls must be an uninstantiated Task")
    if not isinstance(task_instance, Task):
        raise TypeError("task_instance must be a Task instance")
    shared = set(task_instance.declared_params()) & set(task_cls.declared_params())
    return {name: task_instance.param_kwargs[name] for name in shared}


class inherits:
    """Give the decorated task class the parameters of these tasks (those it does not define
    itself), and ``clone_parent()``/``clone_parents()``."""

    def __init__(self, *tasks_to_inherit: type[Task], **kw_tasks_to_inherit: type[Task]) -> None:
        if not tasks_to_inherit and not kw_tasks_to_inherit:
            raise TypeError("tasks_to_inherit or kw_tasks_to_inherit must contain at least one task")
        if tasks_to_inherit and kw_tasks_to_inherit:
            raise TypeError("only one of tasks_to_inherit or kw_tasks_to_inherit may be present")
        self.tasks_to_inherit = tasks_to_inherit
        self.kw_tasks_to_inherit = kw_tasks_to_inherit

    def __call__(self, task_that_inherits: type[Task]) -> type[Task]:
        for task_to_inherit in [*self.tasks_to_inherit, *self.kw_tasks_to_inherit.values()]:
            for name, param in task_to_inherit.declared_params().items():
                if not hasattr(task_that_inherits, name):
                    setattr(task_that_inherits, name, param)
        type.__setattr__(task_that_inherits, "_luigi_params", None)
        if "_luigi_params" in task_that_inherits.__dict__:
            delattr(task_that_inherits, "_luigi_params")
        if self.kw_tasks_to_inherit:
            kw = self.kw_tasks_to_inherit

            def clone_parents_kw(_self: Task, **kwargs: Any) -> dict[str, Any]:
                return {k: _self.clone(cls=v, **kwargs) for k, v in kw.items()}

            task_that_inherits.clone_parents = clone_parents_kw  # type: ignore[attr-defined]
        else:
            parents = self.tasks_to_inherit

            def clone_parent(_self: Task, **kwargs: Any) -> Any:
                return _self.clone(cls=parents[0], **kwargs)

            def clone_parents(_self: Task, **kwargs: Any) -> list[Any]:
                return [_self.clone(cls=t, **kwargs) for t in parents]

            task_that_inherits.clone_parent = clone_parent  # type: ignore[attr-defined]
            task_that_inherits.clone_parents = clone_parents  # type: ignore[attr-defined]
        return task_that_inherits


class requires:
    """``inherits`` plus a ``requires()`` that returns the cloned parent task(s)."""

    def __init__(self, *tasks_to_require: type[Task], **kw_tasks_to_require: type[Task]) -> None:
        if not tasks_to_require and not kw_tasks_to_require:
            raise TypeError("tasks_to_require or kw_tasks_to_require must contain at least one task")
        self.inherit_decorator = inherits(*tasks_to_require, **kw_tasks_to_require)
        self.single = len(tasks_to_require) == 1

    def __call__(self, task_that_requires: type[Task]) -> type[Task]:
        task_that_requires = self.inherit_decorator(task_that_requires)
        single = self.single

        def requires_(_self: Task) -> Any:
            return _self.clone_parent() if single else _self.clone_parents()  # type: ignore[attr-defined]

        setattr(task_that_requires, "requires", requires_)  # noqa: B010
        return task_that_requires


class copies:
    """A task that requires ``task_to_copy`` and copies its output to its own."""

    def __init__(self, task_to_copy: type[Task]) -> None:
        self.requires_decorator = requires(task_to_copy)

    def __call__(self, task_that_copies: type[Task]) -> type[Task]:
        task_that_copies = self.requires_decorator(task_that_copies)

        def run(_self: Task) -> None:
            with _self.input().open("r") as source, _self.output().open("w") as dest:
                for line in source:
                    dest.write(line)

        setattr(task_that_copies, "run", run)  # noqa: B010
        return task_that_copies


def delegates(task_that_delegates: type[Task]) -> type[Task]:
    """A task whose ``subtasks()`` run inside its own ``run()`` (their requirements become its)."""
    if not hasattr(task_that_delegates, "subtasks"):
        raise AttributeError(f'{task_that_delegates} needs to implement the method "subtasks"')

    class Wrapped(task_that_delegates):  # type: ignore[valid-type, misc]
        def deps(self) -> list[Any]:
            own = flatten(self.requires())
            subtasks = flatten(self.subtasks())
            return [*own, *(d for t in subtasks for d in t.deps())]

        def run(self) -> Any:
            for t in flatten(self.subtasks()):
                t.run()
            return task_that_delegates.run(self)

    functools.update_wrapper(Wrapped, task_that_delegates, updated=())
    Wrapped.__name__ = task_that_delegates.__name__
    Wrapped.__qualname__ = task_that_delegates.__qualname__
    return Wrapped


def previous(task: Task) -> Task:
    """The same task one period earlier (its single date parameter moved back)."""
    params = task.declared_params()
    values = dict(task.param_kwargs)
    for name, param in params.items():
        step = getattr(param, "interval", 1)
        if isinstance(values[name], dt.datetime):
            unit = {"datehour": dt.timedelta(hours=step), "dateminute": dt.timedelta(minutes=step)}
            values[name] = values[name] - unit.get(param.type_name, dt.timedelta(days=step))
            return task.clone(**values)
        if isinstance(values[name], dt.date):
            values[name] = values[name] - dt.timedelta(days=step)
            return task.clone(**values)
    raise NotImplementedError("No task parameter - can't determine previous task")


def get_previous_completed(task: Task, max_steps: int = 10) -> Task | None:
    prev = task
    for _ in range(max_steps):
        prev = previous(prev)
        if prev.complete():
            return prev
    return None
