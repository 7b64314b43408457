"""``airflow.providers.standard.sensors.filesystem``: ``airflow.sensors.filesystem``'s shims."""

from __future__ import annotations

from ....sensors.filesystem import FileSensor

__all__ = ["FileSensor"]
