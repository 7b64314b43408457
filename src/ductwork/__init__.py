"""Ductwork: workflow orchestration for data pipelines.

Write pipelines as Luigi-style class tasks, Airflow-style flows of operators, or decorated
functions; all three compile to one graph model that Ductwork schedules, runs, retries and
shows. This module only re-exports the public names; importing it does no I/O.
"""

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
