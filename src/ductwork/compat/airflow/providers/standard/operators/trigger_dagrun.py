"""``airflow.providers.standard.operators.trigger_dagrun``: ``airflow.operators.trigger_dagrun``'s shims."""

from __future__ import annotations

from ....operators.trigger_dagrun import TriggerDagRunOperator

__all__ = ["TriggerDagRunOperator"]
