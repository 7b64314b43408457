"""What the engine lends a running try beyond its run and results: a narrow, explicit seam.

``TaskServices`` is built by whoever executes tries (the scheduler's worker runtime, or the
in-process runner) and handed to ``execute_try``, which puts its parts in the task context:

- ``conn`` / ``var`` (templates: ``{{ conn.warehouse.host }}``, ``{{ var.value.region }}``) and
  ``secrets`` (code: ``context["secrets"].get_connection("warehouse")``), from ``secrets``;
- ``store``: a ``FlowStore``, for the few operators that act on other runs (the external-task
  sensor, the trigger-flow operator). Only runtimes with a metadata database set it;
  ``require_store`` gives the clear error otherwise;
- ``failure_alert``: how the flow option ``on_failure_email`` sends its e-mail.

Nothing here is global: a try sees exactly what its runtime gave it.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ductwork.core.connections import ConnectionAccessor, Secrets, VariableAccessor
from ductwork.core.versioning import CacheStore
from ductwork.errors import DuctworkError


@dataclass(frozen=True)
class RunView:
    """A run of any flow as the store reports it to a task."""

    flow_id: str
    run_id: str
    state: str
    logical_date: dt.datetime
    task_states: Mapping[str, str] = field(default_factory=dict)
    data_interval_start: dt.datetime | None = None
    data_interval_end: dt.datetime | None = None
    start_date: dt.datetime | None = None
    end_date: dt.datetime | None = None


class FlowStore(Protocol):
    """The store as tasks may use it: look at other runs and start new ones."""

    def find_run(self, flow_id: str, logical_date: dt.datetime) -> RunView | None:
        """The run of ``flow_id`` for ``logical_date`` (with its task states), or ``None``."""
        ...

    def get_run(self, flow_id: str, run_id: str) -> RunView | None: ...

    def flow_task_ids(self, flow_id: str) -> list[str]:
        """The task ids of ``flow_id`` as last parsed; ``NotFoundError`` (naming the closest
        known flows) when the database knows no such flow (Airflow's ``check_existence``)."""
        ...

    def last_success(self, flow_id: str, before: dt.datetime) -> RunView | None:
        """The latest successful run of ``flow_id`` whose logical date is before ``before``
        (Airflow's ``prev_*_success`` template values)."""
        ...

    def trigger(
        self,
        flow_id: str,
        *,
        run_id: str | None = None,
        logical_date: dt.datetime | None = None,
        conf: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        note: str | None = None,
    ) -> RunView:
        """Queue a manual run of ``flow_id`` for the scheduler."""
        ...

    def clear_run(self, flow_id: str, run_id: str, *, reason: str) -> RunView:
        """Send every task of an existing run back to be run again (a finished run is queued
        again), as ``ductwork tasks clear`` does; the run as it is then."""
        ...


FailureAlert = Callable[[Mapping[str, Any], Sequence[str]], None]
"""Sends the failure e-mail of a task (its context) to the given addresses."""


@dataclass(frozen=True)
class TaskServices:
    secrets: Secrets | None = None
    store: FlowStore | None = None
    failure_alert: FailureAlert | None = None
    cache: CacheStore | None = None
    """Earlier tries of tasks with ``cache="content"`` (``core.versioning``); None: every try runs."""

    def context_values(self) -> dict[str, Any]:
        """What goes into each try's context (built once: the accessors hold no state of a try)."""
        return dict(self._context_values)

    @functools.cached_property
    def _context_values(self) -> dict[str, Any]:
        secrets = self.secrets or Secrets([])
        values: dict[str, Any] = {
            "secrets": secrets,
            "conn": ConnectionAccessor(secrets),
            "var": VariableAccessor(secrets),
        }
        if self.store is not None:
            values["store"] = self.store
        return values


class StoreUnavailableError(DuctworkError):
    """A task needs the metadata database and its runtime has none."""


def require_store(context: Mapping[str, Any], what: str) -> FlowStore:
    """The context's store, or an error saying how to run the task so that it has one."""
    store = context.get("store")
    if store is None:
        raise StoreUnavailableError(
            f"{what} needs the metadata database to look at other flows' runs, and this try has none: "
            "`ductwork run --no-record` and ductwork.testing do not use the database "
            "unless given a store (run_locally(..., services=TaskServices(store=...))); "
            "run the flow with a recorded `ductwork run` or with the scheduler (ductwork scheduler) instead"
        )
    return store
