"""Ductwork's stand-in for the ``airflow`` package (served only when Airflow is not installed).

DAG files written for Airflow 2.x (and the ``airflow.sdk`` paths of 3.x) import from here and run
on Ductwork's engine; see the README's migration guide for what differs.
"""

from __future__ import annotations

from .models.dag import DAG

__version__ = "2.10.5"
__ductwork_shim__ = True

__all__ = ["DAG", "__version__"]
