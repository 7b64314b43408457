"""The scheduler's worker runtime for pool tests, in a module of its own: it imports the store,
which would slow down the start of every worker of tests that do not need it."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pool_support import SqliteResults

from ductwork.engine.executor import TryRequest
from ductwork.engine.journal_runtime import JournalRuntime as ScheduledRuntime


class JournaledRuntime(ScheduledRuntime):
    """The scheduler's runtime (tries journaled in ``journal_dir``) with results kept in
    ``<journal_dir>.results.db`` instead of the metadata database (the tests have no runs there)."""

    def results(self) -> Any:
        if self._results is None:
            path = Path(f"{self.journal_dir}.results.db")
            if not path.exists():
                SqliteResults(path).create()
            self._results = SqliteResults(path)
        return self._results


class GatedJournalRuntime(JournaledRuntime):
    """The scheduler's runtime (journal, results in the database), whose workers wait before
    recording a try's start until the file ``gate`` exists; ``<gate>.waiting`` shows one waits."""

    def __init__(self, db_url: str, journal_dir: str | Path, settings: Any = None, *, gate: str | Path = "") -> None:
        super().__init__(db_url, journal_dir, settings)
        self.gate = str(gate)

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "gate": self.gate}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.gate = state["gate"]

    def on_try_started(self, request: TryRequest, pid: int) -> bool:
        partial = Path(self.gate + ".waiting.partial")
        partial.write_text(str(pid))
        partial.replace(self.gate + ".waiting")  # renamed whole: the test never reads it empty
        while not os.path.exists(self.gate):
            time.sleep(0.02)
        return super().on_try_started(request, pid)
