"""Results passed between tasks (Airflow's XCom), behind a small port.

Results are keyed by the run's key (``RunInfo.key``: flow id / run id, unique across flows),
the task id and a key. Whoever executes a try writes its results through a ``ResultBackend``: the in-process runner
uses ``MemoryResults``, the persistent engine a database-backed one. Task code only ever sees
``ti.xcom_push`` / ``ti.xcom_pull`` and the arguments of decorated tasks.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

RETURN_VALUE = "return_value"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class ResultBackend(Protocol):
    def push(self, run_key: str, task_id: str, key: str, value: Any, *, serializer: str | None = None) -> None:
        """Store a value; ``serializer`` names the format to write it in (backends that keep
        values in memory ignore it)."""
        ...

    def pull(self, run_key: str, task_id: str, key: str = RETURN_VALUE) -> Any:
        """The value, or ``MISSING``."""
        ...

    def clear(self, run_key: str, task_id: str) -> None:
        """Forget a task's results (before a retry or after a clear)."""
        ...


class MemoryResults:
    """Results held in a dictionary; thread-safe, for in-process runs and tests."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()

    def push(self, run_key: str, task_id: str, key: str, value: Any, *, serializer: str | None = None) -> None:
        with self._lock:
            self._data[(run_key, task_id, key)] = value

    def pull(self, run_key: str, task_id: str, key: str = RETURN_VALUE) -> Any:
        return self._data.get((run_key, task_id, key), MISSING)

    def clear(self, run_key: str, task_id: str) -> None:
        with self._lock:
            for k in [k for k in self._data if k[0] == run_key and k[1] == task_id]:
                del self._data[k]

    def items(self) -> list[tuple[tuple[str, str, str], Any]]:
        """Every (run key, task id, key) and value held."""
        with self._lock:
            return list(self._data.items())

    def keys(self, run_key: str, task_id: str) -> list[str]:
        return sorted(k[2] for k in self._data if k[0] == run_key and k[1] == task_id)
