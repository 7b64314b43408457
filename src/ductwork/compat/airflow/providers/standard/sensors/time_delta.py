"""``airflow.providers.standard.sensors.time_delta``: ``airflow.sensors.time_delta``'s shims."""

from __future__ import annotations

from ....sensors.time_delta import TimeDeltaSensor, TimeDeltaSensorAsync, WaitSensor

__all__ = ["TimeDeltaSensor", "TimeDeltaSensorAsync", "WaitSensor"]
