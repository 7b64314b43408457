"""Third-party operators, sensors, targets and notifiers, found through entry points.

A distribution declares them in its metadata, one group per kind::

    [project.entry-points."ductwork.operators"]
    spark_submit = "acme_ductwork.spark:SparkSubmitOperator"

Nothing is discovered at import: ``Plugins`` reads the installed distributions' metadata when
first asked (``names``), and imports a plugin's module only when that plugin is loaded
(``load``). Loading checks that the object is of the kind its group promises.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable
from typing import Any

from ductwork.errors import DuctworkError, NotFoundError, did_you_mean

OPERATORS = "ductwork.operators"
SENSORS = "ductwork.sensors"
TARGETS = "ductwork.targets"
NOTIFIERS = "ductwork.notifiers"
SECRETS = "ductwork.secrets"
"""Secrets backends: a callable that takes the ``Settings`` and returns an object with
``get_connection(name)`` and ``get_variable(name)`` (a class with that ``__init__`` will do);
enabled by naming it in the ``secrets_backends`` setting as ``plugin:NAME``."""
GROUPS = (OPERATORS, SENSORS, TARGETS, NOTIFIERS, SECRETS)


class PluginError(DuctworkError):
    """A plugin could not be imported, or is not what its entry point group promises."""


def _is_operator(obj: Any) -> bool:
    from ductwork.core.operators.base import BaseOperator

    return isinstance(obj, type) and issubclass(obj, BaseOperator)


def _is_sensor(obj: Any) -> bool:
    from ductwork.core.sensors import BaseSensorOperator

    return isinstance(obj, type) and issubclass(obj, BaseSensorOperator)


def _is_target(obj: Any) -> bool:
    return isinstance(obj, type) and callable(getattr(obj, "exists", None))


_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    OPERATORS: (_is_operator, "a BaseOperator subclass"),
    SENSORS: (_is_sensor, "a BaseSensorOperator subclass"),
    TARGETS: (_is_target, "a class with an exists() method"),
    NOTIFIERS: (callable, "a callable"),
    SECRETS: (callable, "a callable that returns a secrets backend"),
}


class Plugins:
    """The plugins of one environment.

    Args:
        entry_points: where entry points come from; by default the installed distributions
            (``importlib.metadata.entry_points``). Pass a list of ``EntryPoint`` to use others.
    """

    def __init__(self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> None:
        self._given = list(entry_points) if entry_points is not None else None
        self._found: dict[str, dict[str, importlib.metadata.EntryPoint]] = {}
        self._loaded: dict[tuple[str, str], Any] = {}

    def _group(self, group: str) -> dict[str, importlib.metadata.EntryPoint]:
        if group not in GROUPS:
            raise NotFoundError(
                f"unknown plugin group {group!r}; groups: {', '.join(GROUPS)}.{did_you_mean(group, GROUPS)}"
            )
        if group not in self._found:
            if self._given is not None:
                points = [ep for ep in self._given if ep.group == group]
            else:
                points = list(importlib.metadata.entry_points(group=group))
            self._found[group] = {ep.name: ep for ep in points}
        return self._found[group]

    def names(self, group: str) -> list[str]:
        """The plugin names of ``group``, without importing them."""
        return sorted(self._group(group))

    def describe(self, group: str) -> dict[str, str]:
        """Name to ``module:attribute`` for ``group`` (no import)."""
        return {name: ep.value for name, ep in sorted(self._group(group).items())}

    def load(self, group: str, name: str) -> Any:
        """Import and return one plugin; checked against what the group promises."""
        key = (group, name)
        if key in self._loaded:
            return self._loaded[key]
        points = self._group(group)
        point = points.get(name)
        if point is None:
            available = ", ".join(sorted(points)) or "none installed"
            raise NotFoundError(f"no {group} plugin named {name!r} ({available}).{did_you_mean(name, points)}")
        dist = getattr(getattr(point, "dist", None), "name", None)
        origin = f"{point.value}" + (f" from distribution {dist!r}" if dist else "")
        try:
            obj = point.load()
        except Exception as exc:
            raise PluginError(
                f"{group} plugin {name!r} ({origin}) failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        check, wanted = _CHECKS[group]
        if not check(obj):
            raise PluginError(f"{group} plugin {name!r} ({origin}) is {obj!r}, not {wanted}")
        self._loaded[key] = obj
        return obj

    def load_all(self, group: str) -> dict[str, Any]:
        return {name: self.load(group, name) for name in self.names(group)}


def operator(name: str) -> Any:
    """The operator class a plugin registered as ``name`` (reads the installed metadata)."""
    return Plugins().load(OPERATORS, name)


def sensor(name: str) -> Any:
    return Plugins().load(SENSORS, name)


def target(name: str) -> Any:
    return Plugins().load(TARGETS, name)


def secrets_backend(name: str) -> Any:
    return Plugins().load(SECRETS, name)
