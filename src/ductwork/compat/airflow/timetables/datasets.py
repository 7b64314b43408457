"""``airflow.timetables.datasets.DatasetOrTimeSchedule``: Ductwork's ``AssetOrTime``."""

from __future__ import annotations

from .._assets import DatasetOrTimeSchedule

__all__ = ["DatasetOrTimeSchedule"]
