"""``airflow.operators.latest_only.LatestOnlyOperator``."""

from __future__ import annotations

from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.sensors import context_clock

from ..operators.empty import EmptyOperator


class LatestOnlyOperator(EmptyOperator):
    """Skips its direct downstream tasks unless this run is the latest scheduled one (its data
    interval ended, the next one has not) or was triggered by hand, as in Airflow."""

    ui_color = "#e9ffdb"

    def execute(self, context: TaskContext) -> Any:
        if context.get("run_type") in ("manual", "backfill_manual") or context["dag_run"].external_trigger:
            context["log"].info("Manually triggered run: not skipping downstream tasks")
            return None
        left = context["data_interval_end"]
        right = left + (context["data_interval_end"] - context["data_interval_start"])
        now = context_clock(context).now()
        if left < now <= right:
            context["log"].info("Latest run (%s < now <= %s): downstream tasks run", left, right)
            return None
        context["log"].info(
            "Not the latest run (now %s is outside (%s, %s]): skipping downstream tasks", now, left, right
        )
        context["ti"].follow_branches([])
        return None


__all__ = ["LatestOnlyOperator"]
