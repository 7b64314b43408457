"""``airflow.operators.empty.EmptyOperator``."""

from __future__ import annotations

from ductwork.core.operators import EmptyOperator as _Empty

from ..models.baseoperator import AirflowOperatorMixin


class EmptyOperator(AirflowOperatorMixin, _Empty):
    """Does nothing; useful to join or fan out branches."""


__all__ = ["EmptyOperator"]
