"""``airflow.providers.standard.sensors.external_task``: ``airflow.sensors.external_task``'s shims."""

from __future__ import annotations

from ....sensors.external_task import ExternalTaskMarker, ExternalTaskSensor

__all__ = ["ExternalTaskMarker", "ExternalTaskSensor"]
