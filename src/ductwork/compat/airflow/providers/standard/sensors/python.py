"""``airflow.providers.standard.sensors.python``: ``airflow.sensors.python``'s shims."""

from __future__ import annotations

from ....sensors.python import PythonSensor

__all__ = ["PythonSensor"]
