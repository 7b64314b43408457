"""How result values become bytes, behind a small port so that others can be added.

``JsonSerializer`` is the default: readable in the database, safe to load (no code runs on
read), and lossless for the values tasks usually pass (dates, tuples, sets, decimals: see
``ductwork.store.codec``). A pickle serializer (opt-in) and offloading large values to an
object store are planned; each stored row names its serializer, so they can coexist.
"""

from __future__ import annotations

from typing import Any, Protocol

from ductwork.store import codec


class Serializer(Protocol):
    name: str
    """Stored with each value; must never change for a given format."""

    def dumps(self, value: Any) -> bytes:
        """The value as bytes; raises ``TypeError`` (with a message naming the part) when it cannot."""
        ...

    def loads(self, data: bytes) -> Any: ...


class JsonSerializer:
    name = "json"

    def dumps(self, value: Any) -> bytes:
        return codec.dumps(value).encode("utf-8")

    def loads(self, data: bytes) -> Any:
        return codec.loads(data)
