"""Lossless JSON for values Python users pass around: dates, tuples, sets, non-string keys.

Plain ``json`` turns a ``datetime`` into an error, a tuple into a list and ``{1: "a"}`` into
``{"1": "a"}``; a task that returns a tuple of dates would get something else back from the
store than from the in-process runner. This codec walks the value once and writes the types
JSON lacks as small tagged objects (``{"__dw__": "datetime", "v": "..."}``), so what comes back
equals what went in. Dicts whose keys are not all strings, or that contain the tag key
themselves, are written as tagged lists of pairs, so no user dict is ever mistaken for a tag.

Values of other types raise ``UnencodableValueError`` with the path to the offending part.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import types
import uuid
from collections.abc import Callable
from typing import Any

TAG = "__dw__"


class UnencodableValueError(TypeError):
    """A value (at ``path``) has a type the codec cannot write."""

    def __init__(self, value: Any, path: str) -> None:
        self.value = value
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"a {type(value).__module__}.{type(value).__qualname__} value{where} is not JSON-serializable")


def _tagged(tag: str, value: Any) -> dict[str, Any]:
    return {TAG: tag, "v": value}


def encode(value: Any, path: str = "") -> Any:
    """``value`` as a structure of JSON types only (dict with str keys, list, str, number, bool, None)."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value if type(value) in (int, float) else _scalar(value, path)
    if isinstance(value, list):
        return [encode(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return _encode_dict(value, path)
    if isinstance(value, types.MappingProxyType):  # a DictParameter's value, frozen to be hashable
        return _encode_dict(dict(value), path)
    if isinstance(value, tuple):
        return _tagged("tuple", [encode(v, f"{path}[{i}]") for i, v in enumerate(value)])
    if isinstance(value, set | frozenset):
        items = [encode(v, f"{path}{{}}") for v in value]
        return _tagged("frozenset" if isinstance(value, frozenset) else "set", items)
    return _scalar(value, path)


def _encode_dict(value: dict[Any, Any], path: str) -> Any:
    if all(isinstance(k, str) for k in value) and TAG not in value:
        return {k: encode(v, f"{path}.{k}" if path else k) for k, v in value.items()}
    pairs = [[encode(k, f"{path}<key>"), encode(v, f"{path}[{k!r}]")] for k, v in value.items()]
    return _tagged("dict", pairs)


def _scalar(value: Any, path: str) -> Any:
    # datetime before date: a datetime is a date.
    if isinstance(value, dt.datetime):
        return _tagged("datetime", value.isoformat())
    if isinstance(value, dt.date):
        return _tagged("date", value.isoformat())
    if isinstance(value, dt.time):
        return _tagged("time", value.isoformat())
    if isinstance(value, dt.timedelta):
        return _tagged("timedelta", [value.days, value.seconds, value.microseconds])
    if isinstance(value, decimal.Decimal):
        return _tagged("decimal", str(value))
    if isinstance(value, uuid.UUID):
        return _tagged("uuid", str(value))
    if isinstance(value, bytes):
        return _tagged("bytes", base64.b64encode(value).decode("ascii"))
    if isinstance(value, int) and not isinstance(value, bool):  # IntEnum and friends keep their value
        return int(value)
    if isinstance(value, float):
        return float(value)
    raise UnencodableValueError(value, path)


def _timedelta(v: list[int]) -> dt.timedelta:
    return dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2])


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "timedelta": _timedelta,
    "decimal": decimal.Decimal,
    "uuid": uuid.UUID,
    "bytes": lambda v: base64.b64decode(v),
    "tuple": lambda v: tuple(decode(x) for x in v),
    "set": lambda v: {decode(x) for x in v},
    "frozenset": lambda v: frozenset(decode(x) for x in v),
    "dict": lambda v: {decode(k): decode(x) for k, x in v},
}


def decode(data: Any) -> Any:
    """The inverse of ``encode``."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict):
        tag = data.get(TAG)
        if isinstance(tag, str) and len(data) == 2 and "v" in data and tag in _DECODERS:
            return _DECODERS[tag](data["v"])
        return {k: decode(v) for k, v in data.items()}
    return data


def dumps(value: Any) -> str:
    """``value`` as compact JSON text, tagged where plain JSON would lose information."""
    return json.dumps(encode(value), separators=(",", ":"), ensure_ascii=False)


def loads(text: str | bytes) -> Any:
    return decode(json.loads(text))
