"""Typed parameters: one converter per type with three verbs.

``parse`` turns the text a user typed (CLI, config file, environment, web form) into a value,
``serialize`` turns a value back into that text, and ``normalize`` accepts either and returns the
value, so a parameter may be given ``"2024-01-31"`` or ``date(2024, 1, 31)`` alike. Task identity
is computed from the serialized form of significant parameters, which is why ``serialize`` must
be canonical (sorted keys, ISO dates).

A parameter is declared as a class attribute of a task or config class (Luigi style) or in a
flow's ``params`` mapping (Airflow style); both use these classes, and both serialize to the same
``describe()`` dictionary that the scheduler and the web UI read without importing user code.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import pathlib
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from ductwork.core.frozen import FrozenDict
from ductwork.errors import (
    MissingParameterError,
    ParameterError,
    ParameterTypeError,
    UnknownParameterError,
    did_you_mean,
)

T = TypeVar("T")


class _NoDefault:
    """Marker for a parameter without a default (distinct from a default of None)."""

    def __repr__(self) -> str:
        return "NO_DEFAULT"

    def __bool__(self) -> bool:
        return False


NO_DEFAULT: Any = _NoDefault()


class Parameter(Generic[T]):
    """A string parameter, and the base of every typed parameter.

    Args:
        default: the value when none is given; omit it to make the parameter required.
        description: shown by ``--help``, ``flows show`` and the trigger form.
        significant: whether the value is part of the task's identity. Insignificant
            parameters (a password, a verbosity level) do not make a different task.
    """

    type_name: ClassVar[str] = "str"
    python_types: ClassVar[tuple[type, ...]] = (str,)
    nullable: bool = False
    """Whether ``None`` is a value even when the default is not ``None`` (an argument annotated
    ``int | None``, Luigi's ``Optional*Parameter``); a default of ``None`` implies it."""
    fixed_by: tuple[str, ...] = ()
    """Where the value was read when the flow was defined (an AWS definition's ``maximumRetries``
    or ``period`` using the parameter: ``object 'Flaky', field 'maximumRetries'``): a run given
    another value is refused by ``resolve_values``. Kept in ``describe()``, so that ``trigger``,
    the REST API and the trigger form refuse it too, not only ``ductwork run``."""
    empty_is_null: bool = False
    """Whether the empty text stands for ``None`` too (Luigi's ``Optional*Parameter`` read it
    so): recorded in the description, so ``ductwork trigger --param limit=`` gives ``None`` as
    ``ductwork build --limit ''`` does, with the module not imported."""

    def __init__(
        self,
        default: Any = NO_DEFAULT,
        *,
        description: str = "",
        significant: bool = True,
    ) -> None:
        self.name = ""
        self.description = description
        self.significant = significant
        if default is NO_DEFAULT or default is None:
            self.default = default
        else:
            try:
                self.default = self.normalize(default)
            except (ValueError, TypeError) as exc:
                raise ParameterTypeError(
                    f"{type(self).__name__}(default={default!r}): the default is invalid: {exc}"
                ) from None

    # --- descriptor: typed access on instances, the Parameter itself on the class -------------
    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Self: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Self | T:
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    # --- the three verbs -------------------------------------------------------------------
    def parse(self, text: str) -> T:
        """Text to value; raise ``ValueError`` with a short reason when it does not parse."""
        return text  # type: ignore[return-value]

    def serialize(self, value: T) -> str:
        """Value to canonical text; ``parse(serialize(v)) == v``."""
        return str(value)

    def normalize(self, value: Any) -> T:
        """Accept the value's type or its text form; raise ``ValueError``/``TypeError`` otherwise."""
        if isinstance(value, str) and str not in self.python_types:
            return self.parse(value)
        if self.python_types and not isinstance(value, self.python_types):
            raise TypeError(f"got {type(value).__name__} {value!r}")
        return value

    # --- helpers used by tasks, flows, the CLI and the API ----------------------------------
    @property
    def required(self) -> bool:
        return self.default is NO_DEFAULT

    def takes_null(self) -> bool:
        """Whether ``None`` is a value of this parameter (given by a client as JSON null)."""
        return self.nullable or self.default is None

    def is_null_text(self, text: str) -> bool:
        """Whether ``text`` stands for ``None``: ``null``, JSON's word (as in ``--conf`` and the
        API's JSON), for a parameter that takes ``None``. Command-line and form values are text,
        so without a word for it an ``int | None`` parameter could not be given ``None`` there."""
        return (text == "null" or (text == "" and self.empty_is_null)) and self.takes_null()

    def convert(self, value: Any, *, name: str = "", owner: str = "") -> T | None:
        """``normalize`` with an error that names the parameter and the type it wanted."""
        if value is None or (isinstance(value, str) and self.is_null_text(value)):
            return None
        try:
            return self.normalize(value)
        except (ValueError, TypeError) as exc:
            label = name or self.name
            where = f"{owner}: " if owner else ""
            wanted = f"{self.describe_type()} or null" if self.takes_null() else self.describe_type()
            raise ParameterTypeError(f"{where}parameter {label!r} wants {wanted}, got {value!r} ({exc})") from None

    def serialize_or_none(self, value: Any) -> str | None:
        return None if value is None else self.serialize(value)

    def describe_type(self) -> str:
        return self.type_name

    def describe(self) -> dict[str, Any]:
        """Plain data for the serialized graph, the API and the trigger form."""
        info: dict[str, Any] = {
            "type": self.type_name,
            "required": self.required,
            "description": self.description,
            "significant": self.significant,
        }
        if not self.required:
            info["default"] = self.serialize_or_none(self.default)
        if self.nullable and self.default is not None:  # a default of None already says so
            info["nullable"] = True
        if self.fixed_by:
            info["fixed_by"] = list(self.fixed_by)
        if self.empty_is_null:
            info["empty_is_null"] = True
        return info

    def __repr__(self) -> str:
        default = "" if self.required else f"default={self.default!r}"
        return f"{type(self).__name__}({default})"


class IntParameter(Parameter[int]):
    type_name = "int"
    python_types = (int,)

    def parse(self, text: str) -> int:
        return int(text.strip().replace("_", ""))

    def normalize(self, value: Any) -> int:
        if isinstance(value, bool):
            raise TypeError("got a bool")
        return super().normalize(value)


class FloatParameter(Parameter[float]):
    type_name = "float"
    python_types = (float, int)

    def parse(self, text: str) -> float:
        return float(text.strip())

    def normalize(self, value: Any) -> float:
        if isinstance(value, bool):
            raise TypeError("got a bool")
        return float(super().normalize(value))

    def serialize(self, value: float) -> str:
        return repr(float(value))


_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f"}


class BoolParameter(Parameter[bool]):
    type_name = "bool"
    python_types = (bool,)

    def __init__(self, default: Any = False, **kwargs: Any) -> None:
        super().__init__(default, **kwargs)

    def parse(self, text: str) -> bool:
        word = text.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ValueError("expected true/false, yes/no, 1/0")

    def serialize(self, value: bool) -> str:
        return "true" if value else "false"


class DateParameter(Parameter[dt.date]):
    type_name = "date"
    python_types = (dt.date,)

    def parse(self, text: str) -> dt.date:
        return dt.date.fromisoformat(text.strip())

    def normalize(self, value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        return super().normalize(value)

    def serialize(self, value: dt.date) -> str:
        return value.isoformat()


class DateTimeParameter(Parameter[dt.datetime]):
    """An ISO 8601 timestamp; ``Z`` and offsets are kept, naive values stay naive."""

    type_name = "datetime"
    python_types = (dt.datetime,)

    def parse(self, text: str) -> dt.datetime:
        text = text.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        return dt.datetime.fromisoformat(text)

    def serialize(self, value: dt.datetime) -> str:
        return value.isoformat()


class MonthParameter(Parameter[dt.date]):
    """A calendar month, written ``YYYY-MM``; the value is the month's first day."""

    type_name = "month"
    python_types = (dt.date,)

    def parse(self, text: str) -> dt.date:
        match = re.fullmatch(r"\s*(\d{4})-(\d{1,2})\s*", text)
        if not match:
            raise ValueError("expected YYYY-MM")
        return dt.date(int(match[1]), int(match[2]), 1)

    def normalize(self, value: Any) -> dt.date:
        if isinstance(value, dt.datetime):
            value = value.date()
        value = super().normalize(value)
        return value.replace(day=1)

    def serialize(self, value: dt.date) -> str:
        return f"{value.year:04d}-{value.month:02d}"


_DURATION_UNITS = {
    "w": 604800.0,
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 0.001,
}
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|w|d|h|m|s)")
_ISO_DURATION_RE = re.compile(
    r"P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?"
)
_CLOCK_DURATION_RE = re.compile(r"(?:(?P<d>-?\d+) days?, )?(?P<h>\d+):(?P<m>[0-5]\d):(?P<s>[0-5]\d(?:\.\d+)?)")
"""``str(timedelta)``: ``6:00:00``, ``1 day, 6:00:00``; older releases stored schedules so."""


def parse_duration(text: str) -> dt.timedelta:
    """Parse ``90``, ``1.5``, ``1h30m``, ``2d``, ``500ms``, ISO 8601 ``P1DT2H`` or Python's
    ``str(timedelta)`` (``6:00:00``, ``1 day, 6:00:00``) as a timedelta.

    Raises ``ValueError`` for anything else, ``inf`` and durations past what a timedelta holds
    included: those were an ``OverflowError``, which no caller turns into a message, so
    ``--param timeout=inf`` or ``schedule="1e20"`` ended in a traceback."""
    try:
        return _parse_duration(text)
    except OverflowError:
        raise DurationTooLarge(f"{text.strip()!r} is too large for a duration (at most {_MAX_DAYS} days)") from None


_MAX_DAYS = dt.timedelta.max.days


class DurationTooLarge(ValueError):
    """A duration past what a timedelta holds (``inf``, ``1e20``): a ``ValueError`` as any bad
    duration, told apart by callers that say the limit (``db clean --older-than``)."""


def seconds_duration(seconds: float) -> dt.timedelta:
    """``seconds`` as a timedelta; ``ValueError`` (not ``OverflowError``) past what one holds."""
    try:
        return dt.timedelta(seconds=seconds)
    except OverflowError:
        raise DurationTooLarge(f"{seconds!r} seconds is too large for a duration (at most {_MAX_DAYS} days)") from None


def _parse_duration(text: str) -> dt.timedelta:
    raw = text.strip()
    if not raw:
        raise ValueError("empty duration")
    try:
        return dt.timedelta(seconds=float(raw))
    except ValueError:
        pass
    clock = _CLOCK_DURATION_RE.fullmatch(raw)
    if clock:
        days = int(clock["d"] or 0)
        return dt.timedelta(days=days, hours=int(clock["h"]), minutes=int(clock["m"]), seconds=float(clock["s"]))
    iso = _ISO_DURATION_RE.fullmatch(raw.upper())
    if iso and raw.upper() not in ("P", "PT"):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v}
        return dt.timedelta(seconds=sum(_DURATION_UNITS[k] * v for k, v in parts.items()))
    compact = raw.replace(" ", "").lower()
    pos, total = 0, 0.0
    for match in _DURATION_RE.finditer(compact):
        if match.start() != pos:
            break
        total += float(match[1]) * _DURATION_UNITS[match[2]]
        pos = match.end()
    if pos != len(compact) or pos == 0:
        raise ValueError("expected seconds, a duration like 1h30m or 2d, or ISO 8601 like P1DT2H")
    return dt.timedelta(seconds=total)


def format_duration(value: dt.timedelta) -> str:
    """Canonical text for a timedelta: compact units, exact enough to round-trip."""
    total_us = round(value.total_seconds() * 1_000_000)
    if total_us == 0:
        return "0s"
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    days, rem = divmod(total_us, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds = rem / 1_000_000
    out = ""
    if days:
        out += f"{days}d"
    if hours:
        out += f"{hours}h"
    if minutes:
        out += f"{minutes}m"
    if seconds:
        out += f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"
    return sign + out


class TimeDeltaParameter(Parameter[dt.timedelta]):
    type_name = "timedelta"
    python_types = (dt.timedelta,)

    def parse(self, text: str) -> dt.timedelta:
        return parse_duration(text)

    def normalize(self, value: Any) -> dt.timedelta:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return seconds_duration(value)
        return super().normalize(value)

    def serialize(self, value: dt.timedelta) -> str:
        return format_duration(value)


class ChoiceParameter(Parameter[Any]):
    """One of a fixed set of values (of any one parameter type, strings by default)."""

    type_name = "choice"

    def __init__(
        self,
        choices: Iterable[Any],
        default: Any = NO_DEFAULT,
        *,
        var_type: Parameter[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.var_type = var_type or Parameter()
        self.choices = tuple(self.var_type.normalize(c) for c in choices)
        if not self.choices:
            raise ValueError("ChoiceParameter needs at least one choice")
        super().__init__(default, **kwargs)

    def parse(self, text: str) -> Any:
        return self._check(self.var_type.parse(text))

    def normalize(self, value: Any) -> Any:
        return self._check(self.var_type.normalize(value))

    def serialize(self, value: Any) -> str:
        return self.var_type.serialize(value)

    def _check(self, value: Any) -> Any:
        if value not in self.choices:
            raise ValueError(f"not one of {', '.join(map(str, self.choices))}")
        return value

    def describe_type(self) -> str:
        return "one of " + ", ".join(self.var_type.serialize(c) for c in self.choices)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["choices"] = [self.var_type.serialize(c) for c in self.choices]
        info["choice_type"] = self.var_type.type_name
        return info


class EnumParameter(Parameter[enum.Enum]):
    """A member of an ``Enum``, written by its name."""

    type_name = "enum"

    def __init__(self, enum_type: type[enum.Enum], default: Any = NO_DEFAULT, **kwargs: Any) -> None:
        self.enum_type = enum_type
        super().__init__(default, **kwargs)

    def parse(self, text: str) -> enum.Enum:
        try:
            return self.enum_type[text.strip()]
        except KeyError:
            raise ValueError(f"not one of {', '.join(self.enum_type.__members__)}") from None

    def normalize(self, value: Any) -> enum.Enum:
        if isinstance(value, self.enum_type):
            return value
        if isinstance(value, str):
            return self.parse(value)
        raise TypeError(f"got {type(value).__name__} {value!r}")

    def serialize(self, value: enum.Enum) -> str:
        return value.name

    def describe_type(self) -> str:
        return f"{self.enum_type.__name__} (one of {', '.join(self.enum_type.__members__)})"

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["choices"] = list(self.enum_type.__members__)
        info["choice_type"] = "str"
        return info


def _freeze(value: Any) -> Any:
    """Lists to tuples and dicts to sorted frozen dicts, so values can be hashed and compared."""
    if isinstance(value, Mapping):
        return FrozenDict({k: _freeze(value[k]) for k in sorted(value)})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    return value


def canonical_json(value: Any) -> str:
    return json.dumps(_thaw(value), sort_keys=True, separators=(",", ":"), default=str)


class ListParameter(Parameter[tuple[Any, ...]]):
    """A list, written as JSON (``[1, 2]``) or comma-separated (``a,b``); held as a tuple.

    ``items`` (a parameter, set from an annotation such as ``list[int]``) types each item, so
    ``1,2`` gives ``(1, 2)``, not ``("1", "2")``, and ``["a"]`` is refused naming the item.
    """

    type_name = "list"
    python_types = (list, tuple)

    def __init__(self, default: Any = NO_DEFAULT, *, items: Parameter[Any] | None = None, **kwargs: Any) -> None:
        self.items = items
        super().__init__(default, **kwargs)

    def parse(self, text: str) -> tuple[Any, ...]:
        text = text.strip()
        if text.startswith("["):
            value = json.loads(text)
            if not isinstance(value, list):
                raise ValueError("expected a JSON list")
            return self._typed(_freeze(value))
        if not text:
            return ()
        return self._typed(tuple(part.strip() for part in text.split(",")))

    def normalize(self, value: Any) -> tuple[Any, ...]:
        return self._typed(_freeze(super().normalize(value)))

    def _typed(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.items is None:
            return values
        out = []
        for index, item in enumerate(values):
            try:
                out.append(self.items.normalize(item))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"item {index} ({item!r}) is not {self.items.describe_type()}: {exc}") from None
        return tuple(out)

    def serialize(self, value: Sequence[Any]) -> str:
        return canonical_json(list(value))

    def describe_type(self) -> str:
        return f"list of {self.items.describe_type()}" if self.items is not None else self.type_name

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        if isinstance(self.items, ChoiceParameter):
            # The choices travel with the description, so that a run triggered from the recorded
            # flow (no user code) is held to them too (an AWS isArray parameter's allowedValues).
            info["items"] = self.items.var_type.type_name
            info["item_choices"] = [self.items.var_type.serialize(c) for c in self.items.choices]
        elif self.items is not None:
            info["items"] = self.items.type_name
        return info


class DictParameter(Parameter[Mapping[str, Any]]):
    """A JSON object; held as a read-only mapping so tasks stay hashable."""

    type_name = "dict"
    python_types = (dict, Mapping)

    def parse(self, text: str) -> Mapping[str, Any]:
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return _freeze(value)

    def normalize(self, value: Any) -> Mapping[str, Any]:
        if isinstance(value, str):
            return self.parse(value)
        if not isinstance(value, Mapping):
            raise TypeError(f"got {type(value).__name__} {value!r}")
        return _freeze(value)

    def serialize(self, value: Mapping[str, Any]) -> str:
        return canonical_json(value)


class JsonParameter(Parameter[Any]):
    """Any JSON value (number, string, list, object)."""

    type_name = "json"
    python_types = ()

    def parse(self, text: str) -> Any:
        return _freeze(json.loads(text))

    def normalize(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return self.parse(value)
            except json.JSONDecodeError:
                return value
        return _freeze(value)

    def serialize(self, value: Any) -> str:
        return canonical_json(value)

    def takes_null(self) -> bool:
        return True


class SchemaParameter(Parameter[Any]):
    """A plain JSON value (lists stay lists, objects stay dicts) checked against a JSON Schema:
    ``SchemaParameter(5, schema={"type": "integer", "minimum": 1})``. Airflow's ``Param``.

    Text is read as JSON, or as the text itself when the schema admits strings (so a form field
    holding ``abc`` need not be quoted). Validation uses the ``jsonschema`` library when it is
    installed (``ductwork[airflow]``), else checks ``type``, ``enum``, ``const`` and the numeric
    and length bounds itself.
    """

    type_name = "schema"
    python_types = ()

    def __init__(self, default: Any = NO_DEFAULT, *, schema: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.schema: dict[str, Any] = dict(schema or {})
        super().__init__(default, **kwargs)

    def _admits_strings(self) -> bool:
        kind = self.schema.get("type")
        kinds = kind if isinstance(kind, list) else [kind]
        return kind is None or "string" in kinds

    def parse(self, text: str) -> Any:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            if not self._admits_strings():
                raise ValueError("expected JSON") from None
            value = text
        else:
            if (
                isinstance(value, int | float)
                and self._admits_strings()
                and not _schema_admits_number(self.schema)
                and (self._takes(text) or not self._takes(value))
            ):
                # "123" for a string stays text; a schema without a type whose enum lists
                # numbers (Airflow's Param(1, enum=[1, 2, 3])) takes the number instead.
                value = text
        check_schema(value, self.schema)
        return value

    def _takes(self, value: Any) -> bool:
        try:
            check_schema(value, self.schema)
        except ValueError:
            return False
        return True

    def normalize(self, value: Any) -> Any:
        if isinstance(value, str) and (not self._admits_strings() or not self._takes(value)):
            return self.parse(value)  # text from a form or --param: "2" for enum=[1, 2, 3]
        check_schema(value, self.schema)
        return value

    def takes_null(self) -> bool:
        try:
            check_schema(None, self.schema)
        except ValueError:
            return self.nullable or self.default is None
        return True

    def serialize(self, value: Any) -> str:
        if isinstance(value, str) and self._admits_strings():
            return value
        return json.dumps(value, sort_keys=True, default=str)

    def describe_type(self) -> str:
        """What a value must be, for error messages: the schema's type, or its allowed values."""
        if "enum" in self.schema:
            return "one of " + ", ".join(json.dumps(v, default=str) for v in self.schema["enum"])
        kind = self.schema.get("type", "json")
        return f"{kind} (JSON schema)" if isinstance(kind, str) else f"{'/'.join(map(str, kind))} (JSON schema)"

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["schema"] = self.schema
        if "enum" in self.schema:
            info["choices"] = [self.serialize(v) for v in self.schema["enum"]]
        return info


def schema_hint(schema: Mapping[str, Any]) -> str:
    """A JSON schema in a few words: ``integer, 1 to 100``, ``array as JSON``, ``string, 3 to 10
    characters``: what the trigger form's help line and ``ductwork flows show`` say an Airflow
    ``Param`` wants (its type is "schema" to Ductwork, which told the user nothing)."""
    kind = schema.get("type")
    words = "/".join(map(str, kind)) if isinstance(kind, list) else str(kind or "JSON")
    if kind in ("array", "object"):
        words += " as JSON"
    low, high = schema.get("minimum"), schema.get("maximum")
    if low is not None and high is not None:
        words += f", {low} to {high}"
    elif low is not None:
        words += f", at least {low}"
    elif high is not None:
        words += f", at most {high}"
    short, long = schema.get("minLength"), schema.get("maxLength")
    if short is not None or long is not None:
        words += f", {short or 0} to {long} characters" if long is not None else f", at least {short} characters"
    if "enum" in schema:
        choices = "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
        words = choices if kind is None else f"{words}, {choices}"
    if "format" in schema:
        words += f" ({schema['format']})"
    return words


def _schema_admits_number(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    return "integer" in kinds or "number" in kinds


_JSON_TYPES: Mapping[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict, Mapping),
    "null": (type(None),),
}


def check_schema(value: Any, schema: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` saying why ``value`` does not satisfy ``schema``."""
    try:
        import jsonschema
    except ImportError:
        _check_schema_subset(value, schema)
        return
    try:
        jsonschema.validate(_thaw(value), dict(schema), format_checker=_format_checker(jsonschema))
    except jsonschema.ValidationError as exc:
        raise ValueError(exc.message) from None
    except jsonschema.SchemaError as exc:
        raise ValueError(f"invalid JSON schema: {exc.message}") from None


_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))")


def _is_date_time(value: object) -> bool:
    """RFC 3339's date-time (``2024-01-31T07:35:07+00:00``), as Airflow's jsonschema checks it."""
    if not isinstance(value, str):
        return True  # formats apply to strings only; "type" refuses the rest
    match = _RFC3339.fullmatch(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    try:
        dt.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return match.group(9) is None or (int(match.group(9)) <= 23 and int(match.group(10)) <= 59)


def _format_checker(jsonschema: Any) -> Any:
    """jsonschema's format checker, with ``date-time`` checked even without rfc3339-validator:
    jsonschema skips that format silently when the package is missing, so a ``Param(...,
    format="date-time")`` took any text, where Airflow (which installs it) refuses it."""
    checker = jsonschema.FormatChecker()
    if "date-time" not in checker.checkers:
        checker.checks("date-time")(_is_date_time)
    return checker


def _check_schema_subset(value: Any, schema: Mapping[str, Any]) -> None:
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        ok = False
        for name in kinds:
            types_ = _JSON_TYPES.get(name, (object,))
            if isinstance(value, bool) and name in ("integer", "number"):
                continue
            if isinstance(value, types_):
                ok = True
        if not ok:
            raise ValueError(f"{value!r} is not of type {kind!r}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"{value!r} is not one of {list(schema['enum'])!r}")
    if "const" in schema and value != schema["const"]:
        raise ValueError(f"{value!r} was expected to be {schema['const']!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise ValueError(f"{value!r} is less than the minimum of {schema['minimum']!r}")
        if "maximum" in schema and value > schema["maximum"]:
            raise ValueError(f"{value!r} is greater than the maximum of {schema['maximum']!r}")
    if isinstance(value, str | list | tuple):
        if "minLength" in schema and len(value) < schema["minLength"]:
            raise ValueError(f"{value!r} is too short")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise ValueError(f"{value!r} is too long")


class PathParameter(Parameter[pathlib.Path]):
    type_name = "path"
    python_types = (pathlib.PurePath,)

    def parse(self, text: str) -> pathlib.Path:
        if not text.strip():
            raise ValueError("empty path")
        return pathlib.Path(text.strip())

    def normalize(self, value: Any) -> pathlib.Path:
        return pathlib.Path(super().normalize(value))

    def serialize(self, value: pathlib.Path) -> str:
        return str(value)


PARAMETER_TYPES: Mapping[str, type[Parameter[Any]]] = types.MappingProxyType(
    {
        cls.type_name: cls
        for cls in (
            Parameter,
            IntParameter,
            FloatParameter,
            BoolParameter,
            DateParameter,
            DateTimeParameter,
            MonthParameter,
            TimeDeltaParameter,
            ListParameter,
            DictParameter,
            JsonParameter,
            PathParameter,
            SchemaParameter,
        )
    }
)


def from_description(info: Mapping[str, Any]) -> Parameter[Any]:
    """Rebuild a parameter from ``describe()`` output, so the scheduler and API can validate
    values without importing the code that declared it."""
    type_name = info.get("type", "str")
    kwargs: dict[str, Any] = {
        "description": info.get("description", ""),
        "significant": info.get("significant", True),
    }
    default = NO_DEFAULT if info.get("required", "default" not in info) else info.get("default")
    if type_name == "schema":
        param: Parameter[Any] = SchemaParameter(schema=info.get("schema") or {}, **kwargs)
    elif type_name in ("choice", "enum"):
        inner = PARAMETER_TYPES.get(info.get("choice_type", "str"), Parameter)()
        param = ChoiceParameter(info.get("choices", []), var_type=inner, **kwargs)
    elif type_name == "list" and info.get("item_choices"):
        inner = PARAMETER_TYPES.get(info.get("items", "str"), Parameter)()
        param = ListParameter(items=ChoiceParameter(info["item_choices"], var_type=inner), **kwargs)
    elif type_name == "list" and info.get("items") in _ITEM_TYPES:
        param = ListParameter(items=PARAMETER_TYPES[info["items"]](), **kwargs)
    elif type_name in PARAMETER_TYPES:
        param = PARAMETER_TYPES[type_name](**kwargs)
    else:
        param = Parameter(**kwargs)
    if default is not NO_DEFAULT and default is not None:
        param.default = param.parse(default) if isinstance(default, str) else param.normalize(default)
    elif default is None:
        param.default = None
    param.nullable = bool(info.get("nullable", False))
    param.fixed_by = tuple(str(use) for use in info.get("fixed_by", ()))
    param.empty_is_null = bool(info.get("empty_is_null", False))
    return param


_ANNOTATION_TYPES: list[tuple[type, Callable[[], Parameter[Any]]]] = [
    (bool, BoolParameter),
    (int, IntParameter),
    (float, FloatParameter),
    (dt.datetime, DateTimeParameter),
    (dt.date, DateParameter),
    (dt.timedelta, TimeDeltaParameter),
    (pathlib.PurePath, PathParameter),
    (list, ListParameter),
    (tuple, ListParameter),
    (dict, DictParameter),
    (str, Parameter),
]


def parameter_for(annotation: Any = None, default: Any = NO_DEFAULT, description: str = "") -> Parameter[Any]:
    """The parameter that fits a Python annotation or, failing that, the default's type.

    Used for ``@flow`` function arguments and for plain values in ``Flow(params=...)``.
    """
    if isinstance(default, Parameter):
        return default
    target = _strip_optional(annotation)
    nullable = target is not annotation and _admits_none(annotation)
    if target is None or target is Any:
        target = type(default) if default not in (NO_DEFAULT, None) else str
    origin = typing.get_origin(target) or target
    param: Parameter[Any]
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        param = EnumParameter(origin, description=description)
    elif origin is typing.Literal:
        param = ChoiceParameter(typing.get_args(target), description=description)
    else:
        factory: Callable[[], Parameter[Any]] = JsonParameter
        for py_type, candidate in _ANNOTATION_TYPES:
            if isinstance(origin, type) and issubclass(origin, py_type):
                factory = candidate
                break
        param = factory()
        param.description = description
        if isinstance(param, ListParameter):
            param.items = _item_parameter(target)
    if default is not NO_DEFAULT:
        param.default = None if default is None else param.normalize(default)
    else:
        param.default = NO_DEFAULT
    param.nullable = nullable
    return param


_ITEM_TYPES = ("int", "float", "bool", "date", "datetime")
"""Item types a ``list[...]`` annotation checks: those whose text and value differ. Text items
(``list[str]``) are left as given, as before."""


def _item_parameter(annotation: Any) -> Parameter[Any] | None:
    """The parameter of the items of ``list[int]`` or ``tuple[int, ...]``, when it is one of
    ``_ITEM_TYPES``; None (items as given) otherwise."""
    args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
    if len(args) != 1 or (typing.get_origin(annotation) is tuple and Ellipsis not in typing.get_args(annotation)):
        return None
    item = parameter_for(args[0])
    return item if item.type_name in _ITEM_TYPES and type(item) is PARAMETER_TYPES[item.type_name] else None


def _admits_none(annotation: Any) -> bool:
    """``int | None``, ``Optional[int]``: the argument may be given ``None``."""
    return type(None) in typing.get_args(annotation)


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else Any
    return annotation


def resolve_values(
    owner: str, declared: Mapping[str, Parameter[Any]], given: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Typed values for ``declared`` parameters: defaults overlaid with ``given`` (text or values).

    Errors name ``owner`` and the parameter: an unknown name (with the closest ones), a missing
    required value, a value of the wrong type (with the type wanted).
    """
    given = dict(given or {})
    for name in given:
        if name not in declared:
            raise UnknownParameterError(
                f"{owner}: unknown parameter {name!r}.{did_you_mean(name, declared)} "
                f"Parameters: {', '.join(declared) or '(none)'}"
            )
    values: dict[str, Any] = {}
    missing: list[tuple[str, Parameter[Any]]] = []
    for name, param in declared.items():
        if name in given:
            if given[name] is None and not param.takes_null():  # a client's JSON null
                raise ParameterTypeError(f"{owner}: parameter {name!r} wants {param.describe_type()}, got null")
            values[name] = param.convert(given[name], name=name, owner=owner)
            if param.fixed_by and values[name] != param.default:
                raise ParameterError(
                    f"{owner}: parameter {name!r} is used by {'; '.join(param.fixed_by)}, read when the "
                    f"definition is loaded, so a run cannot change it (given {values[name]!r}, loaded with "
                    f"{param.default!r}); change its value in the definition's values, or store it with "
                    f"`ductwork pipelines put FILE --param {name}=...`"
                )
        elif param.default is not NO_DEFAULT:
            values[name] = param.default
        else:
            missing.append((name, param))
    if len(missing) == 1:
        name, param = missing[0]
        raise MissingParameterError(
            f"{owner}: missing required parameter {name!r} ({param.describe_type()}); give it with --param {name}=VALUE"
        )
    if missing:
        # All at once: an AWS template with seven parameters without defaults took seven tries,
        # one refusal per parameter.
        named = ", ".join(f"{n!r} ({p.describe_type()})" for n, p in missing)
        raise MissingParameterError(
            f"{owner}: missing required parameters {named}; give them with "
            + " ".join(f"--param {n}=VALUE" for n, _ in missing)
        )
    return values


def finite_values(owner: str, values: dict[str, Any], given: Mapping[str, Any] | None) -> dict[str, Any]:
    """``values``, refused when a given one holds NaN or an infinity (``--param ratio=inf``,
    ``nan`` in the trigger form): a run's params are stored as JSON, which has neither, so the
    run would be shown, and read back, with something else than was given (the REST API refuses
    them too). Defaults are the flow's own business: a scheduled run must not fail on one."""
    for name, value in values.items():
        if name not in (given or {}):
            continue
        try:
            json.dumps(value, allow_nan=False, default=str)
        except ValueError:
            raise ParameterError(
                f"{owner}: parameter {name!r} is {value!r}: give a finite number "
                "(run parameters are kept as JSON, which has no NaN or Infinity)"
            ) from None
    return values


def params_into_conf(
    owner: str,
    declared: Mapping[str, Parameter[Any]],
    params: Mapping[str, Any] | None,
    conf: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Typed values and the conf of a run of an Airflow DAG with params, as Airflow triggers one.

    A conf value of a param is checked as that param (a wrong type or bound is an error naming
    it) and overrides a value given as a param (Airflow's ``dag_run_conf_overrides_params``); the
    conf then holds every param, those not given at their default, as Airflow's trigger form
    sends them, so a DAG reading ``dag_run.conf["limit"]`` finds it. Other keys stay as given.
    """
    out = dict(conf or {})
    given = {**(params or {}), **{k: v for k, v in out.items() if k in declared}}
    values = resolve_values(owner, declared, given)
    for name, param in declared.items():
        out[name] = _as_json(param, values[name])
    return values, out


def _as_json(param: Parameter[Any], value: Any) -> Any:
    """A param's value as a conf holds it: JSON as it is (a date param's value as its text)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return param.serialize(value)
    return value
