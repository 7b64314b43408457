"""``airflow.sensors.base``: ``BaseSensorOperator`` and ``PokeReturnValue``.

``deferrable=True`` (and ``mode="reschedule"``) free the worker slot while waiting: the try ends
as ``up_for_reschedule`` and the scheduler queues it again when the next poke is due, which is
how Ductwork defers (docs/adr/0007-compat-shims.md). Time-based sensors wake up exactly at their
target time instead of polling.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ductwork.core.sensors import BaseSensorOperator as _Sensor
from ductwork.core.sensors import PokeReturnValue

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

    @property
    def reschedule(self) -> bool:
        return self.mode == "reschedule"


__all__ = ["BaseSensorOperator", "PokeReturnValue"]
