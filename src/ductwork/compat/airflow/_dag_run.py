"""Airflow's ``dag_run`` as tasks and DAG callbacks see it, and its pendulum dates: apart from
the task context (``_context``) so that the DAG class can build one for its callbacks without an
import cycle."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


def to_pendulum(value: dt.datetime | None) -> Any:
    if value is None:
        return None
    import pendulum

    return pendulum.instance(value).in_timezone("UTC")


@dataclass
class DagRunView:
    """``dag_run``: the run a try belongs to, with Airflow's attribute names."""

    dag_id: str
    run_id: str
    run_type: str
    logical_date: Any
    data_interval_start: Any
    data_interval_end: Any
    conf: dict[str, Any] = field(default_factory=dict)
    dag: Any = None
    external_trigger: bool = False
    start_date: Any = None
    state: str = "running"

    @property
    def execution_date(self) -> Any:
        return self.logical_date

    def get_task_instance(self, task_id: str, session: Any = None, map_index: int = -1) -> Any:
        return None

    def get_task_instances(self, state: Any = None, session: Any = None) -> list[Any]:
        return []
