"""``airflow.providers.standard.sensors.bash``: ``airflow.sensors.bash``'s shims."""

from __future__ import annotations

from ....sensors.bash import BashSensor

__all__ = ["BashSensor"]
