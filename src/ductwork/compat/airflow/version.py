"""``airflow.version``: the Airflow version the shim stands in for (``from airflow.version import
version``, as DAG files that branch on the version read it)."""

from __future__ import annotations

from . import __version__ as version

__all__ = ["version"]
