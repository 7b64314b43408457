"""``luigi.task_register``: the registry of task classes and Luigi's instance cache.

Luigi returns the same object for the same class and parameters (``Fib(10) is Fib(10)``); code
relies on it (a task reading another task's attributes after a build). ``Register`` keeps that
cache and the family-name registry that ``luigi --module m Task`` and ``Register.get_task_cls``
look classes up in.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, ClassVar


class TaskClassException(Exception):
    pass


class TaskClassNotFoundException(TaskClassException):
    pass


class TaskClassAmbigiousException(TaskClassException):
    pass


class Register(abc.ABCMeta):
    """Metaclass of ``luigi.Task``: registers each class and caches instances by the values of
    all their parameters, as Luigi does: two instances that differ only in an insignificant or
    hidden parameter (``dry_run``) share a task id but are not the same object."""

    _reg: ClassVar[list[type]] = []
    _instance_cache: ClassVar[dict[tuple[type, tuple[tuple[str, str | None, bool], ...]], Any] | None] = {}
    _default_namespace_dict: ClassVar[dict[str, str | None]] = {}
    AMBIGUOUS_CLASS: ClassVar[object] = object()

    def __new__(mcs, classname: str, bases: tuple[type, ...], classdict: dict[str, Any], **kwargs: Any) -> Any:
        cls = super().__new__(mcs, classname, bases, classdict, **kwargs)
        cls._namespace_at_class_time = mcs._get_namespace(cls.__module__)  # type: ignore[attr-defined]
        mcs._reg.append(cls)
        return cls

    @classmethod
    def _get_namespace(mcs, module_name: str) -> str | None:
        """The namespace ``luigi.namespace()`` set, when the class was made, for the nearest
        scope holding its module: the module, each package above it, then ``""`` (all)."""
        for parent in mcs._module_parents(module_name):
            entry = mcs._default_namespace_dict.get(parent)
            if entry:
                return entry
        return None

    @staticmethod
    def _module_parents(module_name: str) -> Iterator[str]:
        """``a.b``: ``a.b``, ``a``, ``""``."""
        parts = module_name.split(".")
        for end in range(len(parts), 0, -1):
            yield ".".join(parts[:end])
        if module_name:
            yield ""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().__call__(*args, **kwargs)
        cache = Register._instance_cache
        if cache is None:
            return instance
        # An optional parameter writes None and "" alike (Luigi's text for None): the key tells
        # them apart, or Task() after Task(name="") was that instance, its name "" and not None.
        values = instance.__dict__
        key = (cls, tuple((k, v, values.get(k) is None) for k, v in instance.all_str_params().items()))
        existing = cache.get(key)
        if existing is not None:
            return existing
        cache[key] = instance
        return instance

    @classmethod
    def clear_instance_cache(mcs) -> None:
        mcs._instance_cache = {}

    @classmethod
    def disable_instance_cache(mcs) -> None:
        mcs._instance_cache = None

    @property
    def task_family(cls) -> str:
        return cls.get_task_family()  # type: ignore[attr-defined]

    @classmethod
    def _get_reg(mcs) -> dict[str, Any]:
        reg: dict[str, Any] = {}
        for task_cls in mcs._reg:
            name = task_cls.get_task_family()  # type: ignore[attr-defined]
            if name in reg and reg[name] is not task_cls and reg[name] is not mcs.AMBIGUOUS_CLASS:
                if issubclass(task_cls, reg[name]) or issubclass(reg[name], task_cls):
                    reg[name] = task_cls if issubclass(task_cls, reg[name]) else reg[name]
                    continue
                reg[name] = mcs.AMBIGUOUS_CLASS
            elif name not in reg:
                reg[name] = task_cls
        return reg

    @classmethod
    def _set_reg(mcs, reg: dict[str, Any]) -> None:
        mcs._reg = [cls for cls in reg.values() if cls is not mcs.AMBIGUOUS_CLASS]

    @classmethod
    def task_names(mcs) -> list[str]:
        return sorted(mcs._get_reg().keys())

    @classmethod
    def tasks_str(mcs) -> str:
        return ",".join(mcs.task_names())

    @classmethod
    def get_task_cls(mcs, name: str) -> Any:
        task_cls = mcs._get_reg().get(name)
        if task_cls is None:
            raise TaskClassNotFoundException(mcs._missing_task_msg(name))
        if task_cls is mcs.AMBIGUOUS_CLASS:
            raise TaskClassAmbigiousException(f"Task {name!r} is ambiguous")
        return task_cls

    @classmethod
    def get_all_params(mcs) -> Any:
        for task_name, task_cls in mcs._get_reg().items():
            if task_cls is mcs.AMBIGUOUS_CLASS:
                continue
            for param_name, param_obj in task_cls.declared_params().items():
                yield task_name, False, param_name, param_obj

    @staticmethod
    def _missing_task_msg(task_name: str) -> str:
        import difflib

        close = difflib.get_close_matches(task_name, Register.task_names())
        if close:
            return f"No task {task_name}. Did you mean:\n" + "\n".join(close)
        # Nothing close: every task, as Luigi lists them, so the user sees what there is.
        return f"No task {task_name}. Candidates are: {Register.tasks_str()}"


def load_task(module: str | None, task_name: str, params_str: dict[str, str]) -> Any:
    if module is not None:
        __import__(module)
    return Register.get_task_cls(task_name).from_str_params(params_str)
