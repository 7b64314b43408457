"""Operators by name, for pipelines written as data.

A task names its operator by class name (``BashOperator``, ``SqlOperator``, ``FileSensor``: any
operator or sensor Ductwork ships), by the name a plugin registers under the
``ductwork.operators`` or ``ductwork.sensors`` entry-point groups, or by a dotted path to any
importable operator class (``acme.ops:SparkOperator`` or ``acme.ops.SparkOperator``).
Modules are imported only when a name is looked up.
"""

from __future__ import annotations

import importlib
import inspect
from functools import lru_cache
from typing import Any

from ductwork.errors import DuctworkError, did_you_mean

BUILTIN_MODULES = (
    "ductwork",
    "ductwork.core.sensors",
    "ductwork.integrations.fs",
    "ductwork.integrations.sql",
    "ductwork.integrations.http",
    "ductwork.integrations.email",
    "ductwork.integrations.slack",
    "ductwork.integrations.docker",
    "ductwork.integrations.kubernetes",
    "ductwork.integrations.flows",
)


class UnknownOperatorError(DuctworkError):
    """A task names an operator that is neither built in, a plugin, nor an importable class."""


def _is_operator(value: Any) -> bool:
    from ductwork.core.operators.base import BaseOperator

    return isinstance(value, type) and issubclass(value, BaseOperator) and not inspect.isabstract(value)


@lru_cache(maxsize=1)
def builtin_operators() -> dict[str, type]:
    """Ductwork's own operators and sensors by class name (base classes left out)."""
    found: dict[str, type] = {}
    for module_name in BUILTIN_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name in getattr(module, "__all__", dir(module)):
            value = getattr(module, name, None)
            if isinstance(value, type) and _is_operator(value) and name not in ("BaseOperator", "BaseSensorOperator"):
                found.setdefault(name, value)
    return found


def plugin_names() -> list[str]:
    from ductwork import plugins

    registry = plugins.Plugins()
    return sorted({*registry.names(plugins.OPERATORS), *registry.names(plugins.SENSORS)})


def known_names() -> list[str]:
    return sorted({*builtin_operators(), *plugin_names()})


def resolve(name: str) -> type:
    """The operator class a task's ``operator`` names; raises ``UnknownOperatorError``."""
    builtin = builtin_operators().get(name)
    if builtin is not None:
        return builtin
    from ductwork import plugins

    registry = plugins.Plugins()
    for group in (plugins.OPERATORS, plugins.SENSORS):
        if name in registry.names(group):
            return registry.load(group, name)
    if "." in name or ":" in name:
        value = import_path(name, what=f"operator {name!r}")
        if not _is_operator(value):
            raise UnknownOperatorError(f"operator {name!r} is {type(value).__name__}, not an operator class")
        return value
    raise UnknownOperatorError(
        f"unknown operator {name!r}.{did_you_mean(name, known_names())} Use a built-in operator name, a plugin "
        "name, or a dotted path such as mypackage.operators:MyOperator"
    )


def import_path(path: str, *, what: str) -> Any:
    """The object at ``package.module:attr`` or ``package.module.attr``."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise UnknownOperatorError(f"{what}: {path!r} is not a dotted path like package.module:name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownOperatorError(f"{what}: cannot import {module_name!r}: {exc}") from None
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise UnknownOperatorError(f"{what}: {module_name!r} has no {attr!r}") from None
    return value


def dotted_name(value: Any) -> str | None:
    """``module:qualname`` of a class or function that can be imported back, else None."""
    import sys
    from pathlib import Path

    module = getattr(value, "__module__", None)
    qualname = getattr(value, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module == "__main__":
        return None
    if module.startswith("ductwork_flows_"):
        # Defined in a flow file: importable by the file's name from the flows folder, which the
        # loader of a declarative file puts on the path.
        file = getattr(sys.modules.get(module), "__file__", None)
        if not file:
            return None
        module = Path(file).stem
        return f"{module}:{qualname}" if "." not in qualname else None
    try:
        found = import_path(f"{module}:{qualname}", what="export")
    except DuctworkError:
        return None
    return f"{module}:{qualname}" if found is value else None


def operator_name(cls: type) -> str:
    """How an export names an operator class: its class name when that resolves to it."""
    if builtin_operators().get(cls.__name__) is cls:
        return cls.__name__
    path = dotted_name(cls)
    if path is None:
        raise UnknownOperatorError(
            f"operator class {cls.__qualname__} is defined in a flow file, not an importable module; "
            "move it to a module on the Python path to export the flow"
        )
    return path
