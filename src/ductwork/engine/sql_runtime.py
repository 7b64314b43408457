"""The worker runtime of the scheduler: results and try records in the metadata database.

A worker records the start of a try (only while the database still has it queued: a try the
scheduler no longer wants is not run), heartbeats while it runs, and records how it ended
before telling the scheduler. That order is what makes a scheduler killed at any moment lose
nothing (ADR 0003).
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
from typing import Any

from sqlalchemy import Engine

from ductwork.core.events import TryOutcome
from ductwork.core.results import ResultBackend
from ductwork.core.task_services import TaskServices
from ductwork.engine.executor import TryRequest
from ductwork.engine.executors.runtime import FlowFileRuntime
from ductwork.errors import NotFoundError
from ductwork.settings import Settings
from ductwork.store.engine import create_engine, transaction
from ductwork.store.offload import ObjectStore
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.store.results import SqlResults


class SqlWorkerRuntime(FlowFileRuntime):
    """``settings`` (optional) configure results (offload, pickle) and what tries are lent:
    connections and variables, the store handle, the failure e-mail."""

    def __init__(self, db_url: str, settings: Settings | None = None) -> None:
        super().__init__()
        self.db_url = db_url
        self.settings = settings
        self._services: TaskServices | None = None
        self._engine: Engine | None = None
        self._pks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._host = socket.gethostname()

    def __getstate__(self) -> dict[str, Any]:
        return {"db_url": self.db_url, "settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["db_url"], state.get("settings"))  # type: ignore[misc]

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.db_url)
        return self._engine

    def open(self) -> None:
        self._results = self._make_results()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def results(self) -> ResultBackend:
        if self._results is None:
            self._results = self._make_results()
        return self._results

    def _make_results(self) -> SqlResults:
        settings = self.settings or Settings()
        offload = ObjectStore(settings.results_offload_url) if settings.results_offload_url else None
        return SqlResults(
            self.engine,
            allow_pickle=settings.results_pickle,
            offload=offload,
            offload_threshold=settings.results_offload_threshold,
        )

    def services(self) -> TaskServices:
        if self._services is None:
            from ductwork.task_services import build_task_services

            self._services = build_task_services(self.settings, engine=self.engine, with_store=True)
        return self._services

    def _pk(self, conn: Any, run_key: str) -> int:
        with self._lock:
            pk = self._pks.get(run_key)
        if pk is None:
            record = run_repo.get_run_by_key(conn, run_key)
            if record is None:
                raise NotFoundError(f"run {run_key!r} is not in the database")
            pk = record.pk
            with self._lock:
                self._pks[run_key] = pk
        return pk

    def on_try_started(self, request: TryRequest, pid: int) -> bool:
        key = request.key
        with transaction(self.engine) as conn:
            return task_repo.try_started(
                conn,
                self._pk(conn, key.run_key),
                key.task_id,
                key.try_number,
                hostname=self._host,
                pid=pid,
                at=dt.datetime.now(dt.UTC),
                log_path=request.log_path,
            )

    def on_try_heartbeat(self, request: TryRequest, pid: int) -> None:
        key = request.key
        with transaction(self.engine) as conn:
            task_repo.heartbeat(conn, self._pk(conn, key.run_key), key.task_id, key.try_number)

    def on_try_finished(self, request: TryRequest, outcome: TryOutcome) -> None:
        key = request.key
        with transaction(self.engine) as conn:
            task_repo.try_finished(
                conn,
                self._pk(conn, key.run_key),
                key.task_id,
                key.try_number,
                outcome,
                hostname=self._host,
                log_path=request.log_path,
            )
