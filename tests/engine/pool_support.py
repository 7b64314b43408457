"""Helpers for the worker pool tests: a result backend shared by processes (a SQLite file), a
runtime whose hooks write a journal, and a runner that drives a flow file through a
``Supervisor`` and a ``PoolExecutor``.

Workers import this module by name (it is pickled by reference), which works because pytest
puts this folder on ``sys.path`` and workers start with the parent's ``sys.path``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ductwork.core.clock import SystemClock
from ductwork.core.context import RunInfo
from ductwork.core.results import MISSING, MemoryResults
from ductwork.engine.execution import TryOutcome
from ductwork.engine.executor import TryRequest
from ductwork.engine.executors.pool import PoolExecutor
from ductwork.engine.executors.runtime import FlowFileRuntime
from ductwork.engine.local import make_run_id, try_log_path
from ductwork.engine.recorder import MemoryRecorder, RunSummary, states_from_nodes
from ductwork.engine.supervisor import Supervisor
from ductwork.loading import load_flow


class SqliteResults:
    """Results in a SQLite file, so tries in different processes see each other's."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self._local = threading.local()

    def create(self) -> SqliteResults:
        """Make the file and its table (once, before workers use it: two processes switching
        a new file to WAL at the same moment make one of them fail with "database is locked")."""
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS results (run_key TEXT, task_id TEXT, key TEXT, value BLOB, "
            "PRIMARY KEY (run_key, task_id, key))"
        )
        db.close()
        return self

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        return db

    def push(self, run_key: str, task_id: str, key: str, value: Any) -> None:
        self._db().execute(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?)", (run_key, task_id, key, pickle.dumps(value))
        )

    def pull(self, run_key: str, task_id: str, key: str = "return_value") -> Any:
        row = (
            self._db()
            .execute("SELECT value FROM results WHERE run_key = ? AND task_id = ? AND key = ?", (run_key, task_id, key))
            .fetchone()
        )
        return MISSING if row is None else pickle.loads(row[0])

    def clear(self, run_key: str, task_id: str) -> None:
        self._db().execute("DELETE FROM results WHERE run_key = ? AND task_id = ?", (run_key, task_id))


class JournalRuntime(FlowFileRuntime):
    """Records every hook call as a JSON line in ``journal`` (one ``write`` per line, appended,
    so lines from several workers never mix); refuses the task ids in ``refuse``."""

    def __init__(self, journal: str | Path, *, results_factory: Any = None, refuse: tuple[str, ...] = ()) -> None:
        super().__init__(results_factory=results_factory)
        self.journal = str(journal)
        self.refuse = refuse

    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "journal": self.journal, "refuse": self.refuse}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self.journal = state["journal"]
        self.refuse = state["refuse"]

    def _write(self, **entry: Any) -> None:
        line = (json.dumps(entry) + "\n").encode()
        fd = os.open(self.journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def on_try_started(self, request: TryRequest, pid: int) -> bool:
        wanted = request.key.task_id not in self.refuse
        key = request.key
        self._write(event="started" if wanted else "refused", task=key.task_id, tr=key.try_number, pid=pid)
        return wanted

    def on_try_heartbeat(self, request: TryRequest, pid: int) -> None:
        self._write(event="heartbeat", task=request.key.task_id, tr=request.key.try_number, pid=pid)

    def on_try_finished(self, request: TryRequest, outcome: TryOutcome) -> None:
        self._write(
            event="finished",
            task=request.key.task_id,
            tr=request.key.try_number,
            pid=os.getpid(),
            state=outcome.state.value,
            error=outcome.error,
        )


class SlowToStartRetries(JournalRuntime):
    """Takes 1.5 s before each retry starts: a worker slow to come up (a new process on a busy
    machine) before it gets to the try."""

    def on_try_started(self, request: TryRequest, pid: int) -> bool:
        if request.key.try_number > 1:
            time.sleep(1.5)
        return super().on_try_started(request, pid)


def read_journal(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_in_pool(
    pool: PoolExecutor,
    flow_file: str | Path,
    flow_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    log_dir: Path | None = None,
    run_id: str | None = None,
) -> RunSummary:
    """Run one flow from a file to the end through a ``Supervisor`` and ``pool``.

    The graph is built here, in the test process (the scheduler will read it from the store);
    the tasks run in the pool's workers, which import the file themselves."""
    clock = SystemClock()
    flow = load_flow(f"{flow_file}:{flow_id}", Path(flow_file).parent)
    pool.flow_files[flow_id] = str(flow_file)
    resolved = flow.resolve_params(params)
    when = clock.now()
    interval = flow.schedule.interval_starting(when)
    info = RunInfo(
        flow_id=flow.flow_id,
        run_id=run_id or make_run_id("test", when),
        logical_date=when,
        data_interval_start=interval.start,
        data_interval_end=interval.end,
        params=resolved,
        run_type="test",
        timezone=flow.tz,
    )
    graph, _ = flow.materialize(params=resolved, logical_date=when)
    summary = RunSummary(flow.flow_id, info.run_id, graph, MemoryResults(), started_at=when)
    log_path = (lambda run, task_id, n: try_log_path(log_dir, run, task_id, n)) if log_dir else None
    supervisor = Supervisor(pool, clock, [MemoryRecorder(summary)], log_path=log_path)
    supervisor.add_run(info, graph, states=states_from_nodes(graph.nodes))
    supervisor.run_until_done()
    return summary


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def try_log(log_dir: Path, summary: RunSummary, task_id: str, try_number: int = 1) -> str:
    """A try's log as users read it: its own file, or its entry in the run's pack (ADR 0018)."""
    from ductwork.engine.local import safe_name
    from ductwork.engine.packed_logs import read_log

    path = log_dir / safe_name(summary.flow_id) / safe_name(summary.run_id) / f"{safe_name(task_id)}.{try_number}.log"
    text = read_log(path)
    assert text is not None, f"no log for {task_id} try {try_number} at {path} (nor in its run's pack)"
    return text
