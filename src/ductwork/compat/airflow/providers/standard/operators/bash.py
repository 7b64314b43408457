"""``airflow.providers.standard.operators.bash``: ``airflow.operators.bash``'s shims."""

from __future__ import annotations

from ....operators.bash import BashOperator

__all__ = ["BashOperator"]
