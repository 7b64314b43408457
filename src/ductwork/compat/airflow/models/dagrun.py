"""``airflow.models.dagrun``: ``DagRun``, as DAG files import it for type hints
(``dag_run: DagRun = ti.dag_run``); the object a task gets is the run's view."""

from __future__ import annotations

from .._dag_run import DagRunView as DagRun

__all__ = ["DagRun"]
