"""``luigi.parameter``: Luigi's parameter types over Ductwork's typed parameters.

They parse and serialize as Luigi does (dates as ``2024-01-31``, hours as ``2024-01-31T05``,
lists as JSON) and, like Luigi, accept a value of another type given in code as it is (a task
instance as a ``Parameter``); only text from the command line or a config file is parsed.
Parameters keep Luigi's declaration order (the order positional arguments bind in).
"""

from __future__ import annotations

import ast
import datetime as dt
import enum
import itertools
import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ductwork.core import params as core
from ductwork.core.params import NO_DEFAULT
from ductwork.errors import DuplicateParameterError, MissingParameterError, ParameterError, UnknownParameterError

from .freezing import recursively_freeze

_COUNTER = itertools.count()
_no_value = NO_DEFAULT

ParameterException = ParameterError
MissingParameterException = MissingParameterError
UnknownParameterException = UnknownParameterError
DuplicateParameterException = DuplicateParameterError


class OptionalParameterTypeWarning(UserWarning):
    pass


class UnconsumedParameterWarning(UserWarning):
    pass


class ParameterVisibility(enum.IntEnum):
    PUBLIC = 0
    HIDDEN = 1
    PRIVATE = 2

    @classmethod
    def has_value(cls, value: int) -> bool:
        return any(value == item.value for item in cls)

    def serialize(self) -> int:
        return self.value


class _LuigiParameter(core.Parameter[Any]):
    """Luigi's constructor arguments and leniency on top of a Ductwork parameter type."""

    def __init__(
        self,
        default: Any = NO_DEFAULT,
        is_global: bool = False,
        significant: bool = True,
        description: str | None = None,
        config_path: dict[str, str] | None = None,
        positional: bool = True,
        always_in_help: bool = False,
        batch_method: Callable[[Iterable[Any]], Any] | None = None,
        visibility: ParameterVisibility = ParameterVisibility.PUBLIC,
        **kwargs: Any,
    ) -> None:
        self._counter = next(_COUNTER)
        self.positional = positional and not is_global
        self.config_path = config_path
        self.always_in_help = always_in_help
        self.batch_method = batch_method
        self.visibility = visibility
        super().__init__(default, description=description or "", significant=significant, **kwargs)

    def normalize(self, value: Any) -> Any:
        try:
            return super().normalize(value)
        except (TypeError, ValueError):
            if isinstance(value, str):
                raise
            return value

    def is_null_text(self, text: str) -> bool:
        """Luigi writes ``None`` as the empty text (its ``Optional*Parameter`` read it back);
        ``null`` stands for it only where it could not be a value, never for a text parameter."""
        return str not in self.python_types and super().is_null_text(text)

    def has_task_value(self, task_name: str, param_name: str) -> bool:
        return False

    def next_in_enumeration(self, value: Any) -> Any:
        return None

    def _parser_kwargs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return {}


class Parameter(_LuigiParameter, core.Parameter[Any]):
    """Any value; text as it is."""

    def serialize(self, value: Any) -> str:
        return str(value)


class OptionalParameterMixin:
    nullable = True
    empty_is_null = True
    default_when_not_given: Any = None
    """Luigi's ``Optional*Parameter()`` without a default is ``None`` (not required), so a task
    declaring ``limit = luigi.OptionalIntParameter()`` is made without giving ``limit``; Luigi's
    ``OptionalChoiceParameter`` and ``OptionalNumericalParameter`` stay required."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if not args and "default" not in kwargs:
            kwargs["default"] = self.default_when_not_given
        super().__init__(*args, **kwargs)

    def serialize(self, value: Any) -> str:
        return "" if value is None else super().serialize(value)  # type: ignore[misc]

    def serialize_or_none(self, value: Any) -> str:
        """``""`` for ``None``, as Luigi writes it (``Task(v=)``), and parsed back to ``None``."""
        return self.serialize(value)

    def parse(self, text: str) -> Any:
        return None if text in ("", None) else super().parse(text)  # type: ignore[misc]

    def normalize(self, value: Any) -> Any:
        return None if value is None else super().normalize(value)  # type: ignore[misc]

    def describe(self) -> dict[str, Any]:
        """The scheduler, ``ductwork trigger`` and the API rebuild the parameter from this,
        without the module, as a plain parameter of the value's type: a default of ``None``
        must stay ``None`` there (Luigi's empty text is no ``int``), and ``null`` is a value."""
        info: dict[str, Any] = super().describe()  # type: ignore[misc]
        if "default" in info and self.default is None:  # type: ignore[attr-defined]
            info["default"] = None
        info["nullable"] = True
        return info


class OptionalParameter(OptionalParameterMixin, Parameter):
    pass


class OptionalStrParameter(OptionalParameter):
    pass


class StrParameter(Parameter):
    """Luigi 3.8's text parameter (``luigi.StrParameter``): a ``Parameter``."""


class IntParameter(_LuigiParameter, core.IntParameter):
    def next_in_enumeration(self, value: int) -> int:
        return value + 1


class OptionalIntParameter(OptionalParameterMixin, IntParameter):
    pass


class FloatParameter(_LuigiParameter, core.FloatParameter):
    pass


class OptionalFloatParameter(OptionalParameterMixin, FloatParameter):
    pass


class BoolParameter(_LuigiParameter, core.BoolParameter):
    IMPLICIT_PARSING = "implicit"
    EXPLICIT_PARSING = "explicit"
    parsing = IMPLICIT_PARSING

    def __init__(self, *args: Any, parsing: str | None = None, **kwargs: Any) -> None:
        if not args and "default" not in kwargs:
            kwargs["default"] = False
        self.parsing = parsing or self.parsing
        super().__init__(*args, **kwargs)

    def serialize(self, value: Any) -> str:
        """``True``/``False``, as Luigi writes them (in ``repr`` and in the task id's hash)."""
        return str(value)


class OptionalBoolParameter(OptionalParameterMixin, BoolParameter):
    pass


class _FormattedDate(_LuigiParameter, core.DateTimeParameter):
    """A date or datetime written with a fixed ``date_format``."""

    date_format = "%Y-%m-%d"
    type_name = "datetime"
    as_date = False

    def __init__(self, *args: Any, interval: int = 1, start: Any = None, **kwargs: Any) -> None:
        self.interval = interval
        self.start = start
        super().__init__(*args, **kwargs)

    def parse(self, text: str) -> Any:
        value = dt.datetime.strptime(text.strip(), self.date_format)
        return value.date() if self.as_date else value

    def serialize(self, value: Any) -> str:
        return value.strftime(self.date_format)

    def normalize(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        if self.as_date and isinstance(value, dt.datetime):
            return self._truncate(value.date())
        if not self.as_date and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        return self._truncate(value) if isinstance(value, dt.date) else value

    def _truncate(self, value: Any) -> Any:
        return value


_EPOCH = dt.datetime(1970, 1, 1)


def _add_months(day: dt.date, months: int) -> dt.date:
    """The first day of the month ``months`` after ``day``'s."""
    index = day.month - 1 + months
    return dt.date(day.year + index // 12, index % 12 + 1, 1)


class DateParameter(_FormattedDate):
    """A date; with ``interval=N`` rounded down to every Nth day from ``start`` (1970-01-01)."""

    type_name = "date"
    as_date = True

    def _truncate(self, value: dt.date) -> dt.date:
        start = self.start or _EPOCH.date()
        return value - dt.timedelta(days=(value - start).days % self.interval)

    def next_in_enumeration(self, value: dt.date) -> dt.date:
        return value + dt.timedelta(days=self.interval)


class MonthParameter(_FormattedDate):
    """A month's first day; with ``interval=N``, every Nth month from ``start``'s."""

    type_name = "month"
    date_format = "%Y-%m"
    as_date = True

    def _truncate(self, value: dt.date) -> dt.date:
        start = self.start or _EPOCH.date()
        months = (value.year - start.year) * 12 + value.month - start.month
        return _add_months(start, months - months % self.interval)

    def next_in_enumeration(self, value: dt.date) -> dt.date:
        return _add_months(value, self.interval)


class YearParameter(_FormattedDate):
    """A year's first day; with ``interval=N``, every Nth year from ``start``'s."""

    type_name = "year"
    date_format = "%Y"
    as_date = True

    def _truncate(self, value: dt.date) -> dt.date:
        start = self.start or _EPOCH.date()
        return dt.date(value.year - (value.year - start.year) % self.interval, 1, 1)

    def next_in_enumeration(self, value: dt.date) -> dt.date:
        return value.replace(year=value.year + self.interval)


class _DateTimeStep(_FormattedDate):
    """A datetime rounded down to every ``interval`` steps from ``start`` (1970-01-01T00:00);
    an aware datetime counts from the epoch in its own time zone."""

    step = dt.timedelta(seconds=1)

    def _truncate(self, value: dt.datetime) -> dt.datetime:
        value = value.replace(microsecond=0)
        start = self.start or _EPOCH
        if value.tzinfo is not None and start.tzinfo is None:
            start = start.replace(tzinfo=value.tzinfo)
        granularity = (self.step * self.interval).total_seconds()
        return value - dt.timedelta(seconds=(value - start).total_seconds() % granularity)

    def next_in_enumeration(self, value: dt.datetime) -> dt.datetime:
        return value + self.step * self.interval


class DateHourParameter(_DateTimeStep):
    type_name = "datehour"
    date_format = "%Y-%m-%dT%H"
    step = dt.timedelta(hours=1)


class DateMinuteParameter(_DateTimeStep):
    type_name = "dateminute"
    date_format = "%Y-%m-%dT%H%M"
    step = dt.timedelta(minutes=1)

    def parse(self, text: str) -> Any:
        text = text.strip()
        if "H" in text[11:]:  # the old 2024-01-31T05H30 form
            return dt.datetime.strptime(text, "%Y-%m-%dT%HH%M")
        return super().parse(text)


class DateSecondParameter(_DateTimeStep):
    type_name = "datesecond"
    date_format = "%Y-%m-%dT%H%M%S"


class DateIntervalParameter(Parameter):
    """A ``luigi.date_interval`` value: ``2024-01-31``, ``2024-W05``, ``2024-01``, ``2024``, or
    ``2024-01-01-2024-01-31``."""

    type_name = "date_interval"

    def parse(self, text: str) -> Any:
        from . import date_interval as d

        for kind in (d.Date, d.Week, d.Month, d.Year, d.Custom):
            value = kind.parse(text.strip())
            if value is not None:
                return value
        raise ValueError(f"invalid date interval {text!r}; use 2024-01-31, 2024-W05, 2024-01, 2024 or two dates")

    def normalize(self, value: Any) -> Any:
        return self.parse(value) if isinstance(value, str) else value


class TimeDeltaParameter(_LuigiParameter, core.TimeDeltaParameter):
    """A timedelta: seconds (``90``), ISO 8601 (``P1DT2H``, ``P2W``) or units from the longest
    to the shortest (``2 weeks 1 day``, ``1 h``); written ``0 w 1 d 2 h 0 m 0 s`` as Luigi
    does (whole seconds), which the task id's hash is computed from."""

    _ISO = re.compile(
        r"P((?P<weeks>\d+)W|((?P<days>\d+)D)?(T((?P<hours>\d+)H)?((?P<minutes>\d+)M)?((?P<seconds>\d+)S)?)?)"
    )
    _UNITS = re.compile(
        "".join(
            rf"((?P<{k}>\d+) ?{k[0]}({k[1:-1]})?({k[-1]})? ?)?"
            for k in ("weeks", "days", "hours", "minutes", "seconds")
        )
    )

    def parse(self, text: str) -> dt.timedelta:
        text = text.strip()
        try:
            return dt.timedelta(seconds=float(text))
        except ValueError:
            pass
        for pattern in (self._ISO, self._UNITS):
            found = pattern.match(text)
            if found and any(found.groupdict().values()):
                return dt.timedelta(**{k: int(v) for k, v in found.groupdict(default="0").items()})
        try:
            return super().parse(text)  # Ductwork's compact form (``1h30m``), as older runs recorded it
        except ValueError:
            raise ParameterException(f"Invalid time delta - could not parse {text}") from None

    def serialize(self, value: dt.timedelta) -> str:
        weeks, days = divmod(value.days, 7)
        hours, rest = divmod(value.seconds, 3600)
        return f"{weeks} w {days} d {hours} h {rest // 60} m {rest % 60} s"


class PathParameter(_LuigiParameter, core.PathParameter):
    """A ``pathlib.Path``; ``absolute=True`` makes it absolute and ``exists=True`` refuses a
    path that does not exist, as Luigi's does (both were taken and not applied: a missing
    input file was found only when ``run()`` opened it). The default is checked as it is
    given to a task, not when the class is defined."""

    def __init__(self, *args: Any, absolute: bool = False, exists: bool = False, **kwargs: Any) -> None:
        self.absolute = False
        self.exists = False
        super().__init__(*args, **kwargs)
        self.absolute = absolute
        self.exists = exists

    def normalize(self, value: Any) -> Any:
        path = super().normalize(value)
        if not isinstance(path, Path):
            return path
        if self.absolute:
            path = path.absolute()
        if self.exists and not path.exists():
            raise ValueError(f"The path {path} does not exist.")
        return path


class OptionalPathParameter(OptionalParameterMixin, PathParameter):
    pass


_PY_TYPES: dict[type, Callable[[], core.Parameter[Any]]] = {
    str: core.Parameter,
    int: core.IntParameter,
    float: core.FloatParameter,
    bool: core.BoolParameter,
}


class ChoiceParameter(_LuigiParameter, core.ChoiceParameter):
    def __init__(self, *args: Any, choices: Iterable[Any] = (), var_type: type = str, **kwargs: Any) -> None:
        self._var_type = var_type
        core_type = _PY_TYPES.get(var_type, core.Parameter)()
        self._counter = next(_COUNTER)
        self.positional = kwargs.pop("positional", True)
        self.visibility = kwargs.pop("visibility", ParameterVisibility.PUBLIC)
        self.config_path = kwargs.pop("config_path", None)
        self.always_in_help = kwargs.pop("always_in_help", False)
        self.batch_method = kwargs.pop("batch_method", None)
        kwargs.pop("is_global", None)
        kwargs["description"] = kwargs.get("description") or ""
        core.ChoiceParameter.__init__(self, list(choices), *args, var_type=core_type, **kwargs)


class OptionalChoiceParameter(OptionalParameterMixin, ChoiceParameter):
    default_when_not_given = NO_DEFAULT


class NumericalParameter(Parameter):
    """A number of ``var_type`` within ``[min_value, max_value)`` (``left_op``/``right_op``)."""

    def __init__(
        self,
        *args: Any,
        var_type: type = int,
        min_value: Any = None,
        max_value: Any = None,
        left_op: Callable[[Any, Any], bool] = operator.le,
        right_op: Callable[[Any, Any], bool] = operator.lt,
        **kwargs: Any,
    ) -> None:
        self._var_type = var_type
        self._min, self._max = min_value, max_value
        self._left_op, self._right_op = left_op, right_op
        super().__init__(*args, **kwargs)

    def parse(self, text: str) -> Any:
        return self._check(self._var_type(text))

    def normalize(self, value: Any) -> Any:
        return self.parse(value) if isinstance(value, str) else self._check(value)

    def _check(self, value: Any) -> Any:
        if (self._min is not None and not self._left_op(self._min, value)) or (
            self._max is not None and not self._right_op(value, self._max)
        ):
            raise ValueError(f"{value} is not in the range {self._range()}")
        return value

    def _range(self) -> str:
        """The range as interval notation: ``[0, 10)`` for Luigi's default ``le``/``lt``."""
        left = "[" if self._left_op is operator.le else "("
        right = "]" if self._right_op is operator.le else ")"
        return f"{left}{self._min}, {self._max}{right}"

    def describe_type(self) -> str:
        """What an error says the parameter wants: the number's type and its range (the
        inherited ``str`` misled, as a number is what it parses)."""
        return f"{getattr(self._var_type, '__name__', 'number')} in {self._range()}"


class OptionalNumericalParameter(OptionalParameterMixin, NumericalParameter):
    default_when_not_given = NO_DEFAULT


class EnumParameter(_LuigiParameter, core.EnumParameter):
    def __init__(self, *args: Any, enum: type[enum.Enum] | None = None, **kwargs: Any) -> None:
        if enum is None:
            raise ParameterException("An Enum class must be specified: EnumParameter(enum=...)")
        self._counter = next(_COUNTER)
        self.positional = kwargs.pop("positional", True)
        self.visibility = kwargs.pop("visibility", ParameterVisibility.PUBLIC)
        self.config_path = kwargs.pop("config_path", None)
        self.always_in_help = kwargs.pop("always_in_help", False)
        self.batch_method = kwargs.pop("batch_method", None)
        kwargs.pop("is_global", None)
        kwargs["description"] = kwargs.get("description") or ""
        core.EnumParameter.__init__(self, enum, *args, **kwargs)


class EnumListParameter(Parameter):
    def __init__(self, *args: Any, enum: type[enum.Enum] | None = None, **kwargs: Any) -> None:
        if enum is None:
            raise ParameterException("An Enum class must be specified: EnumListParameter(enum=...)")
        self._enum = enum
        super().__init__(*args, **kwargs)

    def parse(self, text: str) -> tuple[Any, ...]:
        return tuple(self._enum[name.strip()] for name in text.split(",") if name.strip())

    def serialize(self, value: Any) -> str:
        return ",".join(e.name for e in value)

    def normalize(self, value: Any) -> Any:
        return self.parse(value) if isinstance(value, str) else tuple(value)


def _freeze_in_order(value: Any) -> Any:
    """Lists to tuples and dicts to ``FrozenOrderedDict``s, keys in their order: Luigi writes a
    dict in the order it was given, and the task id's hash is computed from that text."""
    return recursively_freeze(value)


class _DictParamEncoder(json.JSONEncoder):
    """What Luigi's modules pass to ``json.dumps`` for a dict parameter's value (``cls=``)."""

    def default(self, o: Any) -> Any:
        if isinstance(o, Mapping):
            return dict(o)
        return super().default(o)


def _json(value: Any) -> str:
    """JSON as Luigi writes list, tuple and dict parameters (``[1, 2]``, ``{"a": 1}``)."""
    return json.dumps(core._thaw(value))


class ListParameter(_LuigiParameter, core.ListParameter):
    def __init__(self, *args: Any, schema: Any = None, **kwargs: Any) -> None:
        self.schema = schema
        super().__init__(*args, **kwargs)

    def parse(self, text: str) -> Any:
        """JSON, as Luigi reads it (``json.loads``): text that is not JSON is an error, not a list
        of one text, and neither is Ductwork's ``a,b`` form, which Luigi refuses too. JSON's
        ``null`` is ``None``, as in Luigi: it is how Luigi writes a list parameter set to
        ``None`` (``to_str_params()``, ``Task(v=null)``), so that text reads back."""
        value = json.loads(text)
        if value is None:
            return None
        if not isinstance(value, list):
            raise ValueError(f"expected a JSON list such as [1, 2], got {text!r}")
        return _freeze_in_order(value)

    def normalize(self, value: Any) -> Any:
        return _freeze_in_order(value) if isinstance(value, list | tuple) else super().normalize(value)

    def serialize(self, value: Any) -> str:
        return _json(value)


class OptionalListParameter(OptionalParameterMixin, ListParameter):
    pass


class TupleParameter(ListParameter):
    def parse(self, text: str) -> tuple[Any, ...]:
        """JSON (``[[1, 2]]``) or a Python tuple (``((1,2),(3,4))``), as Luigi accepts both."""
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text.strip())
            except (ValueError, SyntaxError):
                raise ParameterException(f"not a tuple: {text!r}; write it as JSON or a Python tuple") from None
        if isinstance(value, str) or not isinstance(value, Iterable):
            raise ParameterException(f"not a tuple: {text!r}; write it as JSON or a Python tuple")
        return _freeze_in_order(tuple(value))


class OptionalTupleParameter(OptionalParameterMixin, TupleParameter):
    pass


class DictParameter(_LuigiParameter, core.DictParameter):
    def __init__(self, *args: Any, schema: Any = None, **kwargs: Any) -> None:
        self.schema = schema
        super().__init__(*args, **kwargs)

    def parse(self, text: str) -> Any:
        """A JSON object; JSON's ``null`` is ``None``, as Luigi reads it (its text for ``None``)."""
        value = json.loads(text)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, got {text!r}")
        return _freeze_in_order(value)

    def normalize(self, value: Any) -> Any:
        return _freeze_in_order(value) if isinstance(value, Mapping) else super().normalize(value)

    def serialize(self, value: Any) -> str:
        return _json(value)


class OptionalDictParameter(OptionalParameterMixin, DictParameter):
    pass


def _task_class_error(exc: Exception) -> Exception:
    """``exc`` (Luigi's ``TaskClassNotFoundException`` or ``TaskClassAmbigiousException``) as an
    instance of a subclass that is also a ``ValueError``, which parameter errors are made of; its
    message on one line (Luigi lists the closest names one per line)."""
    kind = type(exc)
    error = type(kind.__name__, (kind, ValueError), {"__module__": kind.__module__})
    return error("; ".join(line for line in str(exc).splitlines() if line.strip()).replace(":;", ":"))


class TaskParameter(Parameter):
    """A task class, written as its family name."""

    def parse(self, text: str) -> Any:
        """The class named ``text``; a name no class has raises Luigi's
        ``TaskClassNotFoundException``, also a ``ValueError``: a parameter's error, so
        ``ductwork build RangeDaily --of Dail`` says which parameter and what was given,
        with the closest names, instead of a traceback."""
        from .task_register import Register, TaskClassException

        try:
            return Register.get_task_cls(text.strip())
        except TaskClassException as exc:
            raise _task_class_error(exc) from None

    def serialize(self, value: Any) -> str:
        return str(value.get_task_family())

    def describe_type(self) -> str:
        """What an error says it wants: the name of a task class, not any text."""
        return "a task class's name"

    def normalize(self, value: Any) -> Any:
        return self.parse(value) if isinstance(value, str) else value


class ChoiceListParameter(Parameter):
    def __init__(self, *args: Any, choices: Iterable[Any] = (), var_type: type = str, **kwargs: Any) -> None:
        self._choices = tuple(choices)
        self._var_type = var_type
        super().__init__(*args, **kwargs)

    def parse(self, text: str) -> tuple[Any, ...]:
        return self.normalize([self._var_type(v.strip()) for v in text.split(",") if v.strip()])

    def serialize(self, value: Any) -> str:
        return ",".join(str(v) for v in value)

    def normalize(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.parse(value)
        bad = [v for v in value if v not in self._choices]
        if bad:
            raise ValueError(f"{bad} not among {list(self._choices)}")
        return tuple(value)


def luigi_text(param: core.Parameter[Any], value: Any) -> str:
    """A value as Luigi's ``serialize`` writes it, ``None`` included (``None``, ``null`` for
    JSON types, ``""`` for optional ones): the text of ``repr`` and of the task id's hash."""
    if value is not None or isinstance(param, OptionalParameterMixin):
        return str(param.serialize(value))
    return "null" if isinstance(param, ListParameter | DictParameter) else "None"
