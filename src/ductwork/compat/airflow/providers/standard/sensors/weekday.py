"""``airflow.providers.standard.sensors.weekday``: ``airflow.sensors.weekday``'s shims."""

from __future__ import annotations

from ....sensors.weekday import DayOfWeekSensor

__all__ = ["DayOfWeekSensor"]
