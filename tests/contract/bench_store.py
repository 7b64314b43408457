"""Store timings (not a test: DESIGN.md keeps timings out of the suite). Prints a table.

    .venv/bin/python tests/contract/bench_store.py [sqlite] [postgres] [mariadb]

Measures, per backend: creating a 10,000-node run, loading its graph back, and the event
sink's cost per event for steps of several sizes (each task's life is six events: scheduled,
queued, try began, running, try ended, success).
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_helpers import T0, change, graph

from dbfixtures import temporary_database
from ductwork.core.states import TaskState as S
from ductwork.engine.execution import TryOutcome
from ductwork.engine.supervisor import EngineEvent, StateChanged, TryBegan, TryEnded
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.repo import runs
from ductwork.store.sink import SqlEventSink


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def task_events(key: str, task_id: str, when: dt.datetime) -> list[EngineEvent]:
    outcome = TryOutcome(S.SUCCESS, when, when + dt.timedelta(seconds=1), rendered={"cmd": "echo"})
    return [
        StateChanged(key, change(task_id, S.NONE, S.SCHEDULED), when, 0),
        StateChanged(key, change(task_id, S.SCHEDULED, S.QUEUED), when, 1),
        TryBegan(key, task_id, 1, when, "worker-1"),
        StateChanged(key, change(task_id, S.QUEUED, S.RUNNING), when, 1),
        TryEnded(key, task_id, 1, outcome),
        StateChanged(key, change(task_id, S.RUNNING, S.SUCCESS), when, 1),
    ]


def bench(backend: str, tmp: Path) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    with temporary_database(backend, tmp) as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        edges = {f"t{i:05d}": ([f"t{i - 1:05d}"] if i % 100 else []) for i in range(10_000)}
        g = graph("big", edges)
        pks: list[int] = []

        def create() -> None:
            with transaction(engine) as conn:
                pks.append(runs.create_run(conn, g, run_id=f"r{len(pks)}", logical_date=T0).pk)

        best = min(timed(create) for _ in range(3))
        rows.append((backend, "create a 10,000-node run", f"{best:.3f} s"))

        def load() -> None:
            with read_transaction(engine) as conn:
                runs.load_run_graph(conn, pks[0])

        rows.append((backend, "load a 10,000-node run's graph", f"{min(timed(load) for _ in range(3)):.3f} s"))
        for per_step in (1, 10, 100, 1000):
            with transaction(engine) as conn:
                pk = runs.create_run(conn, g, run_id=f"sink{per_step}", logical_date=T0).pk
                key = f"big/sink{per_step}"
                del pk
            sink = SqlEventSink(engine)
            task_ids = list(edges)[: max(per_step * 20, 1000)]
            steps = [task_ids[i : i + per_step] for i in range(0, len(task_ids), per_step)]
            batches = [[e for t in step for e in task_events(key, t, T0)] for step in steps]
            total_events = sum(len(b) for b in batches)
            elapsed = timed(lambda: [sink.record(b) for b in batches])  # noqa: B023
            label = f"sink, {per_step} task(s) ({per_step * 6} events) per step"
            rows.append((backend, label, f"{elapsed / total_events * 1e6:.0f} µs/event"))
        engine.dispose()
    return rows


def main(argv: list[str]) -> None:
    backends = argv or ["sqlite"]
    with tempfile.TemporaryDirectory() as tmp:
        results = [row for backend in backends for row in bench(backend, Path(tmp))]
    width = max(len(r[1]) for r in results)
    for backend, what, value in results:
        print(f"{backend:9} {what:{width}}  {value}")


if __name__ == "__main__":
    main(sys.argv[1:])
