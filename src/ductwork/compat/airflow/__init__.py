"""Ductwork's stand-in for the ``airflow`` package (served only when Airflow is not installed).

DAG files written for Airflow 2.x (and the ``airflow.sdk`` paths of 3.x) import from here and run
on Ductwork's engine; see the README's migration guide for what differs.
"""

from __future__ import annotations

from typing import Any

from .models.dag import DAG

__version__ = "2.10.5"
__ductwork_shim__ = True

__all__ = ["DAG", "Dataset", "XComArg", "__version__"]


def __getattr__(name: str) -> Any:
    """``from airflow import Dataset`` / ``XComArg`` (Airflow 2 exports them lazily too)."""
    if name == "Dataset":
        from .datasets import Dataset

        return Dataset
    if name == "XComArg":
        from .models.xcom_arg import XComArg

        return XComArg
    raise AttributeError(f"module 'airflow' has no attribute {name!r}")
