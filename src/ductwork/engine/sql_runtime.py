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
from ductwork.engine.executor import TryRequest
from ductwork.engine.executors.runtime import FlowFileRuntime
from ductwork.errors import NotFoundError
from ductwork.store.engine import create_engine, transaction
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork.store.results import SqlResults


class SqlWorkerRuntime(FlowFileRuntime):
    def __init__(self, db_url: str) -> None:
        super().__init__()
        self.db_url = db_url
        self._engine: Engine | None = None
        self._pks: dict[str, int] = {}
        self._lock = threading.Lock()
        self._host = socket.gethostname()

    def __getstate__(self) -> dict[str, Any]:
        return {"db_url": self.db_url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["db_url"])  # type: ignore[misc]

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.db_url)
        return self._engine

    def open(self) -> None:
        self._results = SqlResults(self.engine)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def results(self) -> ResultBackend:
        if self._results is None:
            self._results = SqlResults(self.engine)
        return self._results

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
