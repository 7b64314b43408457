"""``airflow.models``: DAG, DagBag, BaseOperator, Connection, Param, Variable, XCom, XComArg."""

from __future__ import annotations

from .._context import DagRunView as DagRun
from .._context import TaskInstanceView as TaskInstance
from .baseoperator import BaseOperator
from .connection import Connection
from .dag import DAG
from .dagbag import DagBag
from .param import Param, ParamsDict
from .variable import Variable
from .xcom import XCom
from .xcom_arg import XComArg

__all__ = [
    "DAG",
    "DagBag",
    "BaseOperator",
    "Connection",
    "DagRun",
    "Param",
    "ParamsDict",
    "TaskInstance",
    "Variable",
    "XCom",
    "XComArg",
]
