"""``airflow.sensors.external_task``: wait for a task (or a whole run) of another DAG."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from ductwork.errors import did_you_mean
from ductwork.integrations.flows import ExternalTaskMarker as _Marker
from ductwork.integrations.flows import ExternalTaskSensor as _External

from ..exceptions import AirflowException
from ..models.baseoperator import AirflowOperatorMixin
from .base import BaseSensorOperator


class ExternalTaskSensor(BaseSensorOperator, _External):
    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Collection[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: Collection[str] | None = None,
        skipped_states: Collection[str] | None = None,
        failed_states: Collection[str] | None = None,
        execution_delta: Any = None,
        execution_date_fn: Callable[..., Any] | None = None,
        check_existence: bool = False,
        poll_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            external_flow_id=external_dag_id,
            external_task_id=external_task_id,
            external_task_ids=external_task_ids,
            external_task_group_id=external_task_group_id,
            allowed_states=tuple(allowed_states or ("success",)),
            skipped_states=tuple(skipped_states or ()),
            failed_states=tuple(failed_states or ()),
            execution_delta=execution_delta,
            execution_date_fn=execution_date_fn,
            **kwargs,
        )
        self.external_dag_id = external_dag_id
        self.check_existence = check_existence

    def poke(self, context: Any) -> bool:
        if self.check_existence:
            self._check_existence(context)
        return bool(super().poke(context))

    def _check_existence(self, context: Any) -> None:
        """Airflow's ``check_existence=True``: a DAG or task that does not exist fails the try
        at once (a typo is not waited for until the sensor's timeout)."""
        from ductwork.core.task_services import require_store
        from ductwork.errors import NotFoundError

        store = require_store(context, f"task {self.task_id!r} (ExternalTaskSensor)")
        try:
            known = set(store.flow_task_ids(self.external_flow_id))
        except NotFoundError as exc:
            raise AirflowException(f"The external DAG {self.external_flow_id} does not exist: {exc}") from None
        wanted = [self.external_task_id] if self.external_task_id else list(self.external_task_ids)
        missing = [t for t in wanted if t not in known]
        if missing:
            raise AirflowException(
                f"The external task {missing[0]} in DAG {self.external_flow_id} does not exist."
                + did_you_mean(missing[0], known)
            )
        group = self.external_task_group_id
        if group is not None and not any(t.startswith(f"{group}.") for t in known):
            raise AirflowException(
                f"The external task group '{group}' in DAG '{self.external_flow_id}' does not exist."
            )


class ExternalTaskMarker(AirflowOperatorMixin, _Marker):
    """Clearing it clears ``external_task_id`` of the ``external_dag_id`` run at
    ``execution_date`` (a template), with its downstream tasks, recursively (Airflow's meaning)."""

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str,
        execution_date: str = "{{ logical_date.isoformat() }}",
        recursion_depth: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            external_flow_id=external_dag_id,
            external_task_id=external_task_id,
            logical_date=execution_date,
            recursion_depth=recursion_depth,
            **kwargs,
        )
        self.external_dag_id = external_dag_id
        self.execution_date = execution_date


__all__ = ["ExternalTaskMarker", "ExternalTaskSensor"]
