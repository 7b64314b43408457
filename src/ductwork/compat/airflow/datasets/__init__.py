"""``airflow.datasets`` (Airflow 2.4-2.10): datasets are Ductwork assets (``_assets``)."""

from __future__ import annotations

from .._assets import Dataset, DatasetAlias, DatasetAll, DatasetAny

__all__ = ["Dataset", "DatasetAlias", "DatasetAll", "DatasetAny"]
