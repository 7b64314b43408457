"""One exception tree for everything Ductwork raises on purpose.

Callers catch the branch they can act on; the CLI catches ``DuctworkError`` and prints
``str(error)``, so every message must stand on its own: name the file, line, flow, task or
parameter, and say what was expected.

::

    DuctworkError
    ├── DefinitionError            the pipeline as written cannot be accepted
    │   ├── CycleError             (carries the cycle's path)
    │   ├── DuplicateTaskError
    │   ├── InvalidDependencyError
    │   ├── UnknownArgumentError   (also a TypeError)
    │   ├── ScheduleError          (also a ValueError)
    │   └── FlowImportError        (carries file, line and the original error)
    ├── ParameterError             (also a ValueError)
    │   ├── MissingParameterError
    │   ├── ParameterTypeError
    │   └── UnknownParameterError
    ├── NotFoundError              a flow, task, run or family that does not exist (also a LookupError)
    ├── TemplateError              a templated field failed to render
    ├── InvalidTransitionError     a state change the state machine forbids
    ├── BackfillRefusedError       activating would run every period since a start long past (carries it)
    └── TaskExecutionError         raised inside a try to fail it with a clean message
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class DuctworkError(Exception):
    """Root of every error Ductwork raises deliberately."""


class DefinitionError(DuctworkError):
    """The pipeline definition (flow, task class, operator) is invalid."""


class CycleError(DefinitionError):
    """The dependency graph has a cycle; ``path`` lists it, first node repeated at the end."""

    def __init__(self, path: list[str], where: str = "", written: Iterable[str] = ()) -> None:
        self.path = path
        prefix = f"{where}: " if where else ""
        shown = list(written)
        suffix = f" (written {', '.join(shown)})" if shown else ""
        super().__init__(f"{prefix}dependency cycle: {' -> '.join(path)}{suffix}")


class DuplicateTaskError(DefinitionError):
    """Two tasks of one flow share a task id."""


class InvalidDependencyError(DefinitionError):
    """A dependency points at something that is not a task of the flow."""


class UnknownArgumentError(DefinitionError, TypeError):
    """An operator or task was given an argument it does not accept."""


class ScheduleError(DefinitionError, ValueError):
    """A schedule string or value cannot be parsed."""


class FlowImportError(DefinitionError):
    """A flow file failed to import; keeps the file, the line and the original error."""

    def __init__(self, file: str, line: int | None, error: str, traceback: str = "") -> None:
        self.file = file
        self.line = line
        self.error = error
        self.traceback = traceback
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: failed to import flow file: {error}")


class ParameterError(DuctworkError, ValueError):
    """A parameter value is missing, unknown or of the wrong type."""


class MissingParameterError(ParameterError):
    """A required parameter was not given a value."""


class ParameterTypeError(ParameterError):
    """A parameter value does not parse as the parameter's type."""


class UnknownParameterError(ParameterError):
    """A value was given for a parameter that does not exist."""


class DuplicateParameterError(ParameterError):
    """A parameter was given a value twice (by position and by name)."""


class NotFoundError(DuctworkError, LookupError):
    """A flow, task, run or task family that does not exist was asked for."""


class TaskRemovedError(NotFoundError):
    """A run's task that its flow's file no longer defines (edited after the run started):
    trying it again cannot help, so its try fails without using up its retries."""


class TemplateError(DuctworkError):
    """A templated field failed to render; names the task, the field and the line."""


class InvalidTransitionError(DuctworkError):
    """A state change that the state machine does not allow."""


class BackfillRefusedError(DuctworkError):
    """Activating a pipeline would create a run for every period since ``start``, more than a day
    ago; the person must ask for that backfill."""

    def __init__(self, message: str, start: str) -> None:
        self.start = start
        super().__init__(message)


class TaskExecutionError(DuctworkError):
    """Raised by task code (or by Ductwork on its behalf) to fail a try with a clean message."""


class RunStopped(BaseException):
    """The run a command executes in its own process (``ductwork run``/``build``) was
    cancelled from outside (``ductwork runs cancel``, the web UI, the API): the command stops
    its tries and ends without writing over what the cancel recorded."""


class CommandTerminated(BaseException):
    """The command running a run in its own process got SIGTERM: it stops the run as Ctrl-C
    does. Not a ``KeyboardInterrupt``: a task that catches that (or runs where SIGINT is
    ignored, as in a background job) would take it for its own failure and the run go on."""


class TryInterrupted(BaseException):
    """Raised inside a try's thread when the try passed its execution timeout or was cancelled
    (the in-process executor): Python code in a thread cannot be killed, but it can be made to
    raise. A ``BaseException``, as Airflow's ``AirflowTaskTimeout``, so that a task's own
    ``except Exception`` does not swallow it and go on beside its retry."""

    def __str__(self) -> str:
        return "the try was stopped: it passed its execution timeout or was cancelled"


class TryStopped(TryInterrupted):
    """``TryInterrupted`` by SIGTERM in a remote worker's pool process: Celery's revoke of a try
    cancelled, cleared or marked from outside, or the worker being stopped. The worker, not the
    try's failure handling, decides which it was (``engine.remote.runner``): a try taken away
    from outside runs no callback and says so, instead of "will be retried"."""

    def __str__(self) -> str:
        return "the try was stopped (SIGTERM)"


class TryTimedOut(TryInterrupted):
    """``TryInterrupted`` at the execution timeout: the executor has reported the try failed and
    called its failure (or retry) callbacks already, when the timeout came; the thread, which
    raises only once its code is back in Python (perhaps long after), must not call them again."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' Did you mean X?' suffix for a misspelt name, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)
    if not close:
        return ""
    if len(close) == 1:
        return f" Did you mean {close[0]!r}?"
    return " Did you mean one of " + ", ".join(repr(c) for c in close) + "?"
