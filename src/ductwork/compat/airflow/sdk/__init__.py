"""``airflow.sdk`` (Airflow 3's authoring interface): the same shims as the 2.x paths, and
``Asset``/``AssetAll``/``AssetAny`` as Ductwork assets."""

from __future__ import annotations

from .._assets import Asset, AssetAlias, AssetAll, AssetAny
from ..decorators import dag, setup, task, task_group, teardown
from ..hooks.base import BaseHook
from ..models import DAG, BaseOperator, Connection, Param, Variable, XComArg
from ..operators.python import get_current_context
from ..sensors.base import BaseSensorOperator, PokeReturnValue
from ..utils.context import Context
from ..utils.edgemodifier import Label
from ..utils.helpers import chain, cross_downstream
from ..utils.task_group import TaskGroup
from ..utils.trigger_rule import TriggerRule

__all__ = [
    "DAG",
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "Connection",
    "Context",
    "Label",
    "Param",
    "PokeReturnValue",
    "TaskGroup",
    "TriggerRule",
    "Variable",
    "XComArg",
    "chain",
    "cross_downstream",
    "dag",
    "get_current_context",
    "setup",
    "task",
    "task_group",
    "teardown",
]
