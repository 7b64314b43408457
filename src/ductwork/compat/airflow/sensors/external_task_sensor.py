"""``airflow.sensors.external_task_sensor``: Airflow 1.10's module name for the external task
sensor and marker."""

from __future__ import annotations

from .external_task import ExternalTaskMarker, ExternalTaskSensor

__all__ = ["ExternalTaskMarker", "ExternalTaskSensor"]
