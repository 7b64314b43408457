"""``luigi.freezing``: the read-only values of dict and list parameters.

Luigi holds a ``DictParameter``'s value as a ``FrozenOrderedDict``: keys in the order given (the
task id's hash is computed from that text), hashable, picklable and copyable, so tasks and
their values go into sets, ``copy.deepcopy`` and ``pickle``; modules call ``get_wrapped()`` and
``recursively_unfreeze`` on it. Here it is a ``dict`` that refuses changes, so the stores and
``json.dumps`` take it as a plain dict too (where Luigi's raises).
"""

from __future__ import annotations

import functools
import operator
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, NoReturn

__all__ = ["FrozenOrderedDict", "recursively_freeze", "recursively_unfreeze"]


class FrozenOrderedDict(dict[Any, Any]):
    """A dict that cannot be changed, hashed by its items (its values must be hashable)."""

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(f"'{type(self).__name__}' object does not support item assignment")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = __ior__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return functools.reduce(operator.xor, map(hash, self.items()), 0)

    def __repr__(self) -> str:
        return repr(dict(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))  # unpickled and copied without item assignment

    def __copy__(self) -> FrozenOrderedDict:
        return self

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
