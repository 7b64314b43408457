"""``luigi.freezing``: the read-only values of dict and list parameters.

Luigi holds a ``DictParameter``'s value as a ``FrozenOrderedDict``: keys in the order given (the
task id's hash is computed from that text), hashable, picklable and copyable, so tasks and
their values go into sets, ``copy.deepcopy`` and ``pickle``; modules call ``get_wrapped()`` and
``recursively_unfreeze`` on it. Here it is a ``dict`` that refuses changes, so the stores and
``json.dumps`` take it as a plain dict too (where Luigi's raises).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from ductwork.core.frozen import FrozenDict

__all__ = ["FrozenOrderedDict", "recursively_freeze", "recursively_unfreeze"]


class FrozenOrderedDict(FrozenDict):
    """Luigi's name for a frozen dict (Ductwork's own dict parameters hold the same type)."""

    __slots__ = ()

    def get_wrapped(self) -> OrderedDict[Any, Any]:
        """The mapping as an ``OrderedDict`` (Luigi returns the one it wraps)."""
        return OrderedDict(self)


def recursively_freeze(value: Any) -> Any:
    """Mappings to ``FrozenOrderedDict`` and lists to tuples, all the way down."""
    if isinstance(value, Mapping):
        return FrozenOrderedDict((k, recursively_freeze(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(recursively_freeze(v) for v in value)
    return value


def recursively_unfreeze(value: Any) -> Any:
    """Mappings to ``dict`` and tuples to lists, all the way down (what ``json.dumps`` takes)."""
    if isinstance(value, Mapping):
        return {k: recursively_unfreeze(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [recursively_unfreeze(v) for v in value]
    return value
