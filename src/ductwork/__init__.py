"""Ductwork: workflow orchestration for data pipelines.

Write pipelines as Luigi-style class tasks, Airflow-style flows of operators, or decorated
functions; all three compile to one graph model that Ductwork schedules, runs, retries and
shows. This module only re-exports the public names; importing it does no I/O.

The names are imported when first used (PEP 562's module ``__getattr__``): every ``ductwork``
command imports this package first, and importing the whole authoring API up front cost a
command that needs none of it (``--version``, ``runs list``, ``trigger``) 60-90 ms.
``from ductwork import Flow`` and ``from ductwork import *`` work as before; type checkers
read the imports under ``TYPE_CHECKING``, which a test keeps equal to ``_EXPORTS``.
"""

from __future__ import annotations

TYPE_CHECKING = False
"""``typing`` itself costs every command 8-10 ms at start; type checkers take any name
``TYPE_CHECKING`` as true."""

if TYPE_CHECKING:
    from typing import Any

    from ductwork.core.assets import Asset, AssetAll, AssetAny, AssetOrTime
    from ductwork.core.config import Config, ParamSource, ParamSources
    from ductwork.core.context import TaskContext, get_current_context
    from ductwork.core.decorators import flow, task
    from ductwork.core.external_program import ExternalProgramTask
    from ductwork.core.flow import ClassTaskFlow, Flow
    from ductwork.core.operators import (
        BaseOperator,
        BashOperator,
        BranchPythonOperator,
        EmptyOperator,
        PythonOperator,
        ShortCircuitOperator,
        chain,
        cross_downstream,
    )
    from ductwork.core.params import (
        BoolParameter,
        ChoiceParameter,
        DateParameter,
        DateTimeParameter,
        DictParameter,
        EnumParameter,
        FloatParameter,
        IntParameter,
        JsonParameter,
        ListParameter,
        MonthParameter,
        Parameter,
        PathParameter,
        TimeDeltaParameter,
    )
    from ductwork.core.ranges import RangeDaily, RangeHourly
    from ductwork.core.sensors import BaseSensorOperator, PokeReturnValue
    from ductwork.core.signals import FailNow, SkipTask
    from ductwork.core.states import RunState, TaskState
    from ductwork.core.targets import LocalTarget, MemoryTarget, Target
    from ductwork.core.task import Event, ExternalTask, Task, WrapperTask
    from ductwork.core.task_group import TaskGroup
    from ductwork.core.trigger_rules import TriggerRule
    from ductwork.core.triggers import MqttTopic, NatsJetStream, RabbitMQ, RedisStream

__version__ = "0.1.0"

__all__ = [
    "Asset",
    "AssetAll",
    "AssetAny",
    "AssetOrTime",
    "MqttTopic",
    "NatsJetStream",
    "RabbitMQ",
    "RedisStream",
    "BaseOperator",
    "BaseSensorOperator",
    "BashOperator",
    "BoolParameter",
    "BranchPythonOperator",
    "ChoiceParameter",
    "ClassTaskFlow",
    "Config",
    "DateParameter",
    "DateTimeParameter",
    "DictParameter",
    "EmptyOperator",
    "EnumParameter",
    "Event",
    "ExternalProgramTask",
    "ExternalTask",
    "FailNow",
    "FloatParameter",
    "Flow",
    "IntParameter",
    "JsonParameter",
    "ListParameter",
    "LocalTarget",
    "MemoryTarget",
    "MonthParameter",
    "ParamSource",
    "ParamSources",
    "Parameter",
    "PathParameter",
    "PokeReturnValue",
    "PythonOperator",
    "RangeDaily",
    "RangeHourly",
    "RunState",
    "ShortCircuitOperator",
    "SkipTask",
    "Target",
    "Task",
    "TaskContext",
    "TaskGroup",
    "TaskState",
    "TimeDeltaParameter",
    "TriggerRule",
    "WrapperTask",
    "__version__",
    "chain",
    "cross_downstream",
    "flow",
    "get_current_context",
    "task",
]

_EXPORTS: dict[str, str] = {
    "Asset": "ductwork.core.assets",
    "AssetAll": "ductwork.core.assets",
    "AssetAny": "ductwork.core.assets",
    "AssetOrTime": "ductwork.core.assets",
    "BaseOperator": "ductwork.core.operators",
    "BaseSensorOperator": "ductwork.core.sensors",
    "BashOperator": "ductwork.core.operators",
    "BoolParameter": "ductwork.core.params",
    "BranchPythonOperator": "ductwork.core.operators",
    "ChoiceParameter": "ductwork.core.params",
    "ClassTaskFlow": "ductwork.core.flow",
    "Config": "ductwork.core.config",
    "DateParameter": "ductwork.core.params",
    "DateTimeParameter": "ductwork.core.params",
    "DictParameter": "ductwork.core.params",
    "EmptyOperator": "ductwork.core.operators",
    "EnumParameter": "ductwork.core.params",
    "Event": "ductwork.core.task",
    "ExternalProgramTask": "ductwork.core.external_program",
    "ExternalTask": "ductwork.core.task",
    "FailNow": "ductwork.core.signals",
    "FloatParameter": "ductwork.core.params",
    "Flow": "ductwork.core.flow",
    "IntParameter": "ductwork.core.params",
    "JsonParameter": "ductwork.core.params",
    "ListParameter": "ductwork.core.params",
    "LocalTarget": "ductwork.core.targets",
    "MemoryTarget": "ductwork.core.targets",
    "MonthParameter": "ductwork.core.params",
    "MqttTopic": "ductwork.core.triggers",
    "NatsJetStream": "ductwork.core.triggers",
    "ParamSource": "ductwork.core.config",
    "ParamSources": "ductwork.core.config",
    "Parameter": "ductwork.core.params",
    "PathParameter": "ductwork.core.params",
    "PokeReturnValue": "ductwork.core.sensors",
    "PythonOperator": "ductwork.core.operators",
    "RabbitMQ": "ductwork.core.triggers",
    "RangeDaily": "ductwork.core.ranges",
    "RangeHourly": "ductwork.core.ranges",
    "RedisStream": "ductwork.core.triggers",
    "RunState": "ductwork.core.states",
    "ShortCircuitOperator": "ductwork.core.operators",
    "SkipTask": "ductwork.core.signals",
    "Target": "ductwork.core.targets",
    "Task": "ductwork.core.task",
    "TaskContext": "ductwork.core.context",
    "TaskGroup": "ductwork.core.task_group",
    "TaskState": "ductwork.core.states",
    "TimeDeltaParameter": "ductwork.core.params",
    "TriggerRule": "ductwork.core.trigger_rules",
    "WrapperTask": "ductwork.core.task",
    "chain": "ductwork.core.operators",
    "cross_downstream": "ductwork.core.operators",
    "flow": "ductwork.core.decorators",
    "get_current_context": "ductwork.core.context",
    "task": "ductwork.core.decorators",
}
"""Each public name and the module that defines it, imported when the name is first used."""


if not TYPE_CHECKING:  # type checkers see the imports above; a misspelt name stays an error for them

    def __getattr__(name: str) -> Any:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module 'ductwork' has no attribute {name!r}")
        import importlib

        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # the next lookup is a plain attribute
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
