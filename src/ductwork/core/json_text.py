"""A JSON object read from text a person typed or sent: one reader for every door.

A run's ``--conf``, ``--task-params``, the trigger form's conf box, a connection's ``extra``,
the API's ``params`` query and a message's payload are all "a JSON object, or nothing". Each
door had its own copy of the parse and its own wording, so the same typo read differently in
the CLI, the web page and a dead letter, and only some said where in the text it was. Reading
them here gives one message shape: the field, what JSON found wrong and its line and column,
or what kind of value came instead of an object.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ductwork.errors import ParameterError


def json_kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words (a message reader typed JSON, not Python)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return "an object"


def json_object(text: str | None, field: str, *, example: str = "") -> dict[str, Any]:
    """``text`` as a JSON object; blank text (or none) is an empty one, as if not given.

    ``field`` names the input in the error (``--conf``, ``conf``, ``payload``); ``example``, a
    small object of the kind wanted, is shown when the value is not an object. Raises
    ``ParameterError`` so every caller's error path (exit code 2, HTTP 422, a dead letter)
    already handles it.
    """
    if text is None or not text.strip():
        return {}
    try:
        value = loads_finite(text)
    except NotJsonNumber as exc:
        raise ParameterError(f"{field}: {exc}: give a finite number") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ParameterError(f"{field}: not valid JSON: {exc.msg} ({where})") from None
    except RecursionError:  # "[[[[..." deeper than the decoder goes: still the sender's mistake
        raise ParameterError(f"{field}: not valid JSON this can read (arrays or objects nested too deeply)") from None
    if not isinstance(value, dict):
        such_as = f" such as {example}" if example else ""
        raise ParameterError(f"{field}: expected a JSON object{such_as}, got {json_kind(value)}")
    return value


def loads_finite(text: str) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity`` and numbers past a float
    (``NotJsonNumber``) instead of reading them as Python's float constants."""
    return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)


class NotJsonNumber(ValueError):
    """``NaN``, ``Infinity`` or ``-Infinity`` in the text: Python's reader takes them, JSON has
    them not. Taken, they were stored as such in a run's conf, which the REST API then showed as
    ``null`` (and refused when sent to it): the CLI's ``--conf`` refuses them as the API does."""


def _no_constant(word: str) -> Any:
    raise NotJsonNumber(f"{word} is not a JSON number")


def _finite_float(text: str) -> float:
    """A JSON number as a float; ``1e400``, which Python reads as infinity, is refused."""
    value = float(text)
    if math.isinf(value):
        raise NotJsonNumber(f"{text} is too large for a number")
    return value
