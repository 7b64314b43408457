"""``airflow.timetables.assets.AssetOrTimeSchedule`` (Airflow 3): Ductwork's ``AssetOrTime``."""

from __future__ import annotations

from .._assets import AssetOrTimeSchedule

__all__ = ["AssetOrTimeSchedule"]
