"""``airflow.operators.trigger_dagrun.TriggerDagRunOperator`` over Ductwork's
``TriggerFlowOperator`` (needs the scheduler's store, as in Airflow it needs the database)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from ductwork.integrations.flows import TriggerFlowOperator

from ..models.baseoperator import AirflowOperatorMixin

XCOM_EXECUTION_DATE_ISO = "trigger_execution_date_iso"
XCOM_LOGICAL_DATE_ISO = "trigger_logical_date_iso"
XCOM_RUN_ID = "trigger_run_id"


class TriggerDagRunOperator(AirflowOperatorMixin, TriggerFlowOperator):
    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: Mapping[str, Any] | None = None,
        logical_date: Any = None,
        execution_date: Any = None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: float = 60,
        allowed_states: Collection[str] | None = None,
        failed_states: Collection[str] | None = None,
        skip_when_already_exists: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            trigger_flow_id=trigger_dag_id,
            trigger_run_id=trigger_run_id,
            conf=conf,
            logical_date=logical_date or execution_date,
            wait_for_completion=wait_for_completion,
            poke_interval=poke_interval,
            allowed_states=tuple(allowed_states or ("success",)),
            failed_states=tuple(failed_states or ("failed",)),
            when_exists=_when_exists(reset_dag_run, skip_when_already_exists),
            **kwargs,
        )
        self.trigger_dag_id = trigger_dag_id
        self.reset_dag_run = reset_dag_run
        self.skip_when_already_exists = skip_when_already_exists

    def _started(self, run: Any, context: Any) -> None:
        """Airflow pushes the triggered run's logical date too, which a downstream
        ``ExternalTaskSensor``'s ``execution_date_fn`` reads to watch that run: under Airflow 2's
        key (``trigger_execution_date_iso``) and the newer one (``trigger_logical_date_iso``)."""
        if run.logical_date is None:
            return
        from .._dag_run import to_pendulum

        iso = to_pendulum(run.logical_date).isoformat()
        for key in (XCOM_EXECUTION_DATE_ISO, XCOM_LOGICAL_DATE_ISO):
            context["ti"].xcom_push(key, iso)


def _when_exists(reset_dag_run: bool, skip_when_already_exists: bool) -> str:
    """Airflow resets an existing run before it looks at ``skip_when_already_exists``. Without
    either, Airflow fails on an existing run; Ductwork reuses it, so that a retry of the task
    finds the run its first try started (the default run id is the same for each try)."""
    if reset_dag_run:
        return "reset"
    return "skip" if skip_when_already_exists else "reuse"


__all__ = ["XCOM_EXECUTION_DATE_ISO", "XCOM_LOGICAL_DATE_ISO", "XCOM_RUN_ID", "TriggerDagRunOperator"]
