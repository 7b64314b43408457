"""``airflow.operators.bash_operator``: Airflow 1.10's module name, kept by Airflow 2 (deprecated)."""

from __future__ import annotations

from .bash import BashOperator

__all__ = ["BashOperator"]
