"""``airflow.sensors.base``: ``BaseSensorOperator`` and ``PokeReturnValue``.

``deferrable=True`` (and ``mode="reschedule"``) free the worker slot while waiting: the try ends
as ``up_for_reschedule`` and the scheduler queues it again when the next poke is due, which is
how Ductwork defers (docs/adr/0007-compat-shims.md). Time-based sensors wake up exactly at their
target time instead of polling.
"""

from __future__ import annotations

import datetime as dt
import traceback
from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.sensors import BaseSensorOperator as _Sensor
from ductwork.core.sensors import PokeReturnValue, SensorTimeout
from ductwork.core.signals import FailNow, TaskSignal

from ..exceptions import AirflowSensorTimeout, AirflowSkipException, AirflowTaskTimeout
from ..models.baseoperator import AirflowOperatorMixin


class BaseSensorOperator(AirflowOperatorMixin, _Sensor):
    def __init__(
        self,
        *,
        poke_interval: dt.timedelta | float = 60,
        timeout: dt.timedelta | float = 7 * 24 * 3600,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait: dt.timedelta | float | None = None,
        silent_fail: bool = False,
        never_fail: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            poke_interval=poke_interval,
            timeout=timeout,
            soft_fail=soft_fail or never_fail,
            mode="reschedule" if deferrable else mode,
            exponential_backoff=exponential_backoff,
            max_wait=max_wait,
            **kwargs,
        )
        self.deferrable = deferrable
        self.silent_fail = silent_fail
        self.never_fail = never_fail

    def _poke_once(self, context: TaskContext) -> bool | PokeReturnValue:
        """A poke's exception as Airflow 2.10's sensor answers it: a timeout or a fail-now
        skips the task under ``soft_fail``/``never_fail``; another error is logged and counts as
        a no under ``silent_fail`` (the sensor keeps poking until its timeout) and skips the task
        under ``never_fail``."""
        try:
            return self.poke(context)
        except (SensorTimeout, AirflowTaskTimeout, FailNow) as exc:
            if self.soft_fail:  # never_fail included
                raise AirflowSkipException(f"Skipping due to soft_fail is set to True: {exc}") from exc
            raise
        except TaskSignal:  # a skip, a reschedule
            raise
        except Exception as exc:
            if self.silent_fail:
                self.log.error("Sensor poke failed: \n %s", traceback.format_exc())
                return False
            if self.never_fail:
                raise AirflowSkipException(f"Skipping due to never_fail is set to True: {exc}") from exc
            raise

    def _give_up(self, waited: float, pokes: int) -> None:
        """Airflow's ``AirflowSensorTimeout`` (Ductwork's ``SensorTimeout`` too, no retry), so
        a callback's ``isinstance(context["exception"], AirflowSensorTimeout)`` holds."""
        try:
            super()._give_up(waited, pokes)
        except SensorTimeout as exc:
            raise AirflowSensorTimeout(str(exc)) from None

    @property
    def reschedule(self) -> bool:
        return self.mode == "reschedule"


__all__ = ["BaseSensorOperator", "PokeReturnValue"]
