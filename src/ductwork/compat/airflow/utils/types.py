"""``airflow.utils.types``: ``DagRunType`` (what ``dag_run.run_type`` is compared with) and
``NOTSET``.

The values are Ductwork's run types, which are Airflow's words; a run started by dataset
events is ``asset_triggered`` (Airflow 3's word) under both names.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from ..models.dag import NOTSET
from ..models.dag import _NotSet as ArgNotSet


class DagRunType(StrEnum):
    BACKFILL_JOB = "backfill"
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    ASSET_TRIGGERED = "asset_triggered"
    DATASET_TRIGGERED = "asset_triggered"

    def generate_run_id(self, logical_date: dt.datetime) -> str:
        """``<type>__<ISO date>``, the run ids Ductwork gives runs of this type."""
        return f"{self.value}__{logical_date.isoformat()}"

    @staticmethod
    def from_run_id(run_id: str) -> DagRunType:
        """The type a run id's prefix names (``manual`` for one of none of them)."""
        prefix = run_id.split("__", 1)[0]
        try:
            return DagRunType(prefix)
        except ValueError:
            return DagRunType.MANUAL


__all__ = ["NOTSET", "ArgNotSet", "DagRunType"]
