"""Ductwork's stand-in for the ``luigi`` package (served only when Luigi is not installed).

Luigi modules import from here and run on Ductwork's engine: ``luigi.build``, ``luigi.run``,
the ``luigi`` command and ``python -m luigi``; see the README's migration guide.
"""

from __future__ import annotations

import importlib
from typing import Any

from ductwork.core.task import getpaths

from . import configuration, date_interval, event, interface, local_target, parameter, target, task, util
from .event import Event
from .execution_summary import LuigiStatusCode
from .interface import build, run
from .local_target import LocalTarget
from .parameter import (
    BoolParameter,
    ChoiceListParameter,
    ChoiceParameter,
    DateHourParameter,
    DateIntervalParameter,
    DateMinuteParameter,
    DateParameter,
    DateSecondParameter,
    DictParameter,
    EnumListParameter,
    EnumParameter,
    FloatParameter,
    IntParameter,
    ListParameter,
    MonthParameter,
    NumericalParameter,
    OptionalBoolParameter,
    OptionalChoiceParameter,
    OptionalDictParameter,
    OptionalFloatParameter,
    OptionalIntParameter,
    OptionalListParameter,
    OptionalNumericalParameter,
    OptionalParameter,
    OptionalPathParameter,
    OptionalStrParameter,
    OptionalTupleParameter,
    Parameter,
    PathParameter,
    StrParameter,
    TaskParameter,
    TimeDeltaParameter,
    TupleParameter,
    YearParameter,
)
from .target import Target
from .task import (
    Config,
    DynamicRequirements,
    ExternalTask,
    Task,
    WrapperTask,
    auto_namespace,
    externalize,
    namespace,
)
from .tools.range import RangeDaily, RangeHourly

__version__ = "3.6.0"
__ductwork_shim__ = True

__all__ = [
    "BoolParameter",
    "ChoiceListParameter",
    "ChoiceParameter",
    "Config",
    "DateHourParameter",
    "DateIntervalParameter",
    "DateMinuteParameter",
    "DateParameter",
    "DateSecondParameter",
    "DictParameter",
    "DynamicRequirements",
    "EnumListParameter",
    "EnumParameter",
    "Event",
    "ExternalTask",
    "FloatParameter",
    "IntParameter",
    "ListParameter",
    "LocalTarget",
    "LuigiStatusCode",
    "MonthParameter",
    "NumericalParameter",
    "OptionalBoolParameter",
    "OptionalChoiceParameter",
    "OptionalDictParameter",
    "OptionalFloatParameter",
    "OptionalIntParameter",
    "OptionalListParameter",
    "OptionalNumericalParameter",
    "OptionalParameter",
    "OptionalPathParameter",
    "OptionalStrParameter",
    "OptionalTupleParameter",
    "Parameter",
    "PathParameter",
    "RangeDaily",
    "RangeHourly",
    "StrParameter",
    "Target",
    "Task",
    "TaskParameter",
    "TimeDeltaParameter",
    "TupleParameter",
    "WrapperTask",
    "YearParameter",
    "auto_namespace",
    "build",
    "configuration",
    "date_interval",
    "event",
    "externalize",
    "getpaths",
    "interface",
    "local_target",
    "namespace",
    "parameter",
    "run",
    "target",
    "task",
    "util",
]

_SUBMODULES = frozenset(
    {"cmdline", "cmdline_parser", "execution_summary", "format", "freezing", "lock", "mock", "notifications"}
    | {"retcodes", "scheduler", "task_register", "tools", "worker"}
)


def __getattr__(name: str) -> Any:
    """``luigi.execution_summary.LuigiStatusCode``, ``luigi.notifications``... after a bare
    ``import luigi``: Luigi's package imports these modules itself, so modules use them so."""
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
