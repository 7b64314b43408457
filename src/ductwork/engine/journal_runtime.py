"""The scheduler's worker runtime: tries made durable in the journal, results in the database.

A worker writes nothing to the database for its own bookkeeping: it appends the start and the
end of each try to its journal (``engine.journal``) and sends the outcome to the scheduler,
which records it. Results (XCom) go to the metadata database, since tasks in other workers
read them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from ductwork.core.events import TryOutcome
from ductwork.core.results import ResultBackend
from ductwork.core.task_services import TaskServices
from ductwork.engine.executor import TryRequest
from ductwork.engine.executors.runtime import FlowFileRuntime
from ductwork.engine.journal import JournalWriter, read_journals
from ductwork.settings import Settings
from ductwork.store.engine import create_engine
from ductwork.store.offload import ObjectStore
from ductwork.store.results import SqlResults


class JournalRuntime(FlowFileRuntime):
    """``settings`` (optional) configure results (offload, pickle) and what tries are lent:
    connections and variables, the store handle, the failure e-mail."""

    def __init__(self, db_url: str, journal_dir: str | Path, settings: Settings | None = None) -> None:
        super().__init__()
        self.db_url = db_url
        self.journal_dir = Path(journal_dir)
        self.settings = settings
        self._engine: Engine | None = None
        self._writer: JournalWriter | None = None
        self._services: TaskServices | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"db_url": self.db_url, "journal_dir": str(self.journal_dir), "settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["db_url"], state["journal_dir"], state.get("settings"))  # type: ignore[misc]

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.db_url)
        return self._engine

    def open(self) -> None:
        self._writer = JournalWriter(self.journal_dir)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._engine is not None:
            self._engine.dispose()

    def results(self) -> ResultBackend:
        if self._results is None:
            settings = self.settings or Settings()
            offload = ObjectStore(settings.results_offload_url) if settings.results_offload_url else None
            self._results = SqlResults(
                self.engine,
                allow_pickle=settings.results_pickle,
                offload=offload,
                offload_threshold=settings.results_offload_threshold,
            )
        return self._results

    def services(self) -> TaskServices:
        if self._services is None:
            from ductwork.engine.services_setup import build_task_services

            self._services = build_task_services(self.settings, engine=self.engine, with_store=True)
        return self._services

    def _journal(self) -> JournalWriter:
        if self._writer is None:
            self._writer = JournalWriter(self.journal_dir)
        return self._writer

    def on_try_started(self, request: TryRequest, pid: int) -> bool:
        key = request.key
        self._journal().started_try(key.run_key, key.task_id, key.try_number, dt.datetime.now(dt.UTC), request.log_path)
        return True

    def on_try_finished(self, request: TryRequest, outcome: TryOutcome) -> None:
        key = request.key
        self._journal().ended_try(key.run_key, key.task_id, key.try_number, outcome)

    def try_started(self, request: TryRequest) -> bool:
        """(In the scheduler) whether a dead worker had journaled the start of this try."""
        key = request.key
        entry = read_journals(self.journal_dir).entries.get((key.run_key, key.task_id, key.try_number))
        return entry is not None and entry.started_at is not None

    def recorded_outcome(self, request: TryRequest) -> TryOutcome | None:
        """(In the scheduler) the end a dead worker journaled for this try, if it got that far."""
        key = request.key
        entry = read_journals(self.journal_dir).entries.get((key.run_key, key.task_id, key.try_number))
        return entry.outcome if entry is not None else None
