"""``airflow.exceptions``: Airflow's exceptions, each one the Ductwork signal it means."""

from __future__ import annotations

import datetime as dt

from ductwork.core.sensors import SensorTimeout
from ductwork.core.signals import FailNow, RescheduleTask, SkipTask
from ductwork.errors import DuctworkError, ParameterError


class AirflowException(Exception):
    """Base of Airflow's exceptions; raised in a task, it fails the try (retries apply)."""

    status_code = 500


class AirflowSkipException(SkipTask, AirflowException):
    """End the try as skipped."""


class AirflowFailException(FailNow, AirflowException):
    """Fail the task without using its remaining retries."""


class AirflowSensorTimeout(SensorTimeout, AirflowException):
    """A sensor waited longer than its timeout."""


class AirflowRescheduleException(RescheduleTask, AirflowException):
    """Free the worker slot and try again at ``reschedule_date``."""

    def __init__(self, reschedule_date: dt.datetime) -> None:
        super().__init__(reschedule_date)
        self.reschedule_date = reschedule_date


class AirflowTaskTimeout(AirflowException):
    pass


class AirflowNotFoundException(AirflowException, DuctworkError):
    status_code = 404


class AirflowBadRequest(AirflowException):
    status_code = 400


class AirflowConfigException(AirflowException):
    pass


class AirflowTaskTerminated(AirflowException):
    pass


class DuplicateTaskIdFound(AirflowException):
    pass


class TaskDeferred(AirflowException):
    """Raised by ``defer()``; Ductwork waits by rescheduling (docs/adr/0007-compat-shims.md)."""


class ParamValidationError(AirflowException, ParameterError):
    pass


class AirflowProviderDeprecationWarning(DeprecationWarning):
    pass


class RemovedInAirflow3Warning(DeprecationWarning):
    pass
