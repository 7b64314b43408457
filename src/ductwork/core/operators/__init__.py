"""Operators shipped with the core: Python, Bash, empty, branch and short-circuit."""

from ductwork.core.operators.base import BaseOperator, chain, cross_downstream
from ductwork.core.operators.bash import BashOperator
from ductwork.core.operators.empty import EmptyOperator
from ductwork.core.operators.python import BranchPythonOperator, PythonOperator, ShortCircuitOperator

__all__ = [
    "BaseOperator",
    "BashOperator",
    "BranchPythonOperator",
    "EmptyOperator",
    "PythonOperator",
    "ShortCircuitOperator",
    "chain",
    "cross_downstream",
]
