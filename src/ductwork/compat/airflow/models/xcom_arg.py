"""``airflow.models.xcom_arg.XComArg``."""

from __future__ import annotations

from ductwork.core.xcom_arg import XComArg

__all__ = ["XComArg"]
