"""``airflow.providers.standard.sensors.date_time``: ``airflow.sensors.date_time``'s shims."""

from __future__ import annotations

from ....sensors.date_time import DateTimeSensor, DateTimeSensorAsync

__all__ = ["DateTimeSensor", "DateTimeSensorAsync"]
