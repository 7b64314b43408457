"""``FrozenDict``: the value of a dict parameter, which must be hashable.

A task's identity is made from its parameters (a class task's id, the cache of identical
instances), so their values go into sets and dict keys, ``copy.deepcopy`` and ``pickle``. A
``mappingproxy`` is read-only but neither hashable nor picklable; a ``dict`` that refuses
changes is both, and stores, templates and ``json.dumps`` take it as the dict it is.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, NoReturn


class FrozenDict(dict[Any, Any]):
    """A dict that cannot be changed, hashed by its items (its values must be hashable)."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(f"'{type(self).__name__}' object does not support item assignment")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = __ior__ = _refuse

    def __hash__(self) -> int:  # type: ignore[override]
        return functools.reduce(operator.xor, map(hash, self.items()), 0)

    def __repr__(self) -> str:
        return repr(dict(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (dict(self),))  # unpickled and copied without item assignment

    def __copy__(self) -> FrozenDict:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
        return self  # its values are frozen too: nothing in it can change
