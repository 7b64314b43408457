"""``airflow.providers.standard.sensors.time``: ``airflow.sensors.time_sensor``'s shims."""

from __future__ import annotations

from ....sensors.time_sensor import TimeSensor, TimeSensorAsync

__all__ = ["TimeSensor", "TimeSensorAsync"]
