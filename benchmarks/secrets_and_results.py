"""What masking and result offload cost: prints a table. Run: .venv/bin/python benchmarks/secrets_and_results.py

- masking one 100-character log line with 0, 10 and 200 registered secrets;
- pushing and pulling one result through ``SqlResults`` on SQLite: a small value kept in the
  database, and a 1 MiB value kept in the database or offloaded to a ``file://`` object store.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.masking import SecretsMasker
from ductwork.store import migrate
from ductwork.store.engine import create_engine, transaction
from ductwork.store.offload import ObjectStore
from ductwork.store.repo import runs as run_repo
from ductwork.store.results import SqlResults


def per_call(fn: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def masking_rows() -> list[tuple[str, str]]:
    line = "[2024-01-31 00:00:00] INFO ductwork.task: connecting to db.internal:5432 as etl with sslmode=require ok"
    rows = []
    for count in (0, 10, 200):
        masker = SecretsMasker()
        masker.add([f"secret-value-{i:04d}" for i in range(count)])
        rows.append(
            (f"mask a log line, {count} secrets", f"{per_call(lambda m=masker: m.mask(line), 20000) * 1e6:.2f} µs")
        )
    return rows


def results_rows(folder: Path) -> list[tuple[str, str]]:
    engine = create_engine(f"sqlite:///{folder / 'bench.db'}")
    migrate.upgrade(engine)
    day = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with transaction(engine) as conn:
        run_repo.create_run(conn, FlowGraph(FlowMeta("b"), {"t": NodeSpec("t")}), run_id="r", logical_date=day)
    inline = SqlResults(engine)
    offload = SqlResults(engine, offload=ObjectStore((folder / "objects").as_uri()), offload_threshold=64 * 1024)
    big = "x" * (1 << 20)
    rows = []
    for label, backend, value in (
        ("small value (inline)", inline, {"rows": 10, "ok": True}),
        ("1 MiB value (inline)", inline, big),
        ("1 MiB value (offloaded, file://)", offload, big),
    ):
        push = per_call(lambda b=backend, v=value: b.push("b/r", "t", "k", v), 50)
        pull = per_call(lambda b=backend: b.pull("b/r", "t", "k"), 50)
        rows.append((f"push {label}", f"{push * 1e3:.2f} ms"))
        rows.append((f"pull {label}", f"{pull * 1e3:.2f} ms"))
    engine.dispose()
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rows = masking_rows() + results_rows(Path(tmp))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  time")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
