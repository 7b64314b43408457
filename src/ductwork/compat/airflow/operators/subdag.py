"""``airflow.operators.subdag``: SubDAGs (removed in Airflow 3) are refused; use task groups."""

from __future__ import annotations

from typing import Any

from ductwork.compat.features import refuse


class SubDagOperator:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        refuse("SubDagOperator", "SubDAGs (removed in Airflow 3); use task groups")
