"""``airflow.utils.helpers``."""

from __future__ import annotations

from ductwork.core.operators.base import chain, cross_downstream

__all__ = ["chain", "cross_downstream"]
