"""Bounded metadata: grow 100,000 finished runs over simulated days and watch the database and the
log folder stay the same size once retention is on.

Every simulated day writes ``runs / days`` finished runs (each with ``--tasks`` task instances,
one try each with its log file, a result and its state events, the rows the scheduler writes),
then applies retention the way the scheduler does (``services.cleanup.clean`` with the
scheduler's batch sizing). Prints, every tenth day, the runs kept, the database's size (SQLite:
file plus write-ahead log; PostgreSQL/MariaDB: the database's size as the server reports it),
the log folder's files and bytes, and how long that day's retention pass took.

    python benchmarks/retention.py                       # 100,000 runs over 200 days, SQLite
    python benchmarks/retention.py --retention 0         # the same without retention, to compare
    python benchmarks/retention.py --url postgresql://postgres@127.0.0.1/some_empty_db

Sizes are measured, never asserted; ``tests/engine/test_retention.py`` checks the behaviour.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ductwork.engine.local import safe_name
from ductwork.services import cleanup
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.tables import runs, state_events, task_instances, task_results, task_tries

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
FLOW = "daily_report"


def _day(engine: sa.Engine, logs: Path, day: int, count: int, tasks: int) -> None:
    """``count`` runs that ended on ``day``, written in bulk as the scheduler's sink would."""
    ended = T0 + dt.timedelta(days=day)
    run_rows = [
        {
            "flow_id": FLOW,
            "run_id": f"manual__d{day:04d}_{i:04d}",
            "run_type": "scheduled" if i == 0 else "manual",
            "state": "success",
            "logical_date": ended + dt.timedelta(seconds=i),
            "data_interval_start": ended,
            "data_interval_end": ended,
            "params": {},
            "conf": {},
            "graph_meta": {"meta": {"flow_id": FLOW}, "groups": {}},
            "version_hash": "0" * 16,
            "queued_at": ended,
            "start_date": ended,
            "end_date": ended,
            "created_at": ended,
            "updated_at": ended,
            "note": None,
        }
        for i in range(count)
    ]
    with transaction(engine) as conn:
        conn.execute(sa.insert(runs), run_rows)
        ids = dict(
            conn.execute(
                sa.select(runs.c.run_id, runs.c.id).where(
                    runs.c.flow_id == FLOW, runs.c.run_id.in_([r["run_id"] for r in run_rows])
                )
            ).all()
        )
        instances, tries, events, results = [], [], [], []
        folder_of = {}
        for row in run_rows:
            pk = ids[row["run_id"]]
            folder = logs / FLOW / safe_name(row["run_id"])
            folder_of[pk] = folder
            for t in range(tasks):
                task = f"step_{t}"
                log_path = folder / f"{task}.1.log"
                instances.append(_instance(pk, t, task, ended))
                tries.append(_try(pk, task, ended, str(log_path)))
                for old, new in (
                    ("none", "scheduled"),
                    ("scheduled", "queued"),
                    ("queued", "running"),
                    ("running", "success"),
                ):
                    events.append(_event(pk, task, old, new, ended))
            events.append(_event(pk, None, None, "success", ended))
            results.append(
                {
                    "run_pk": pk,
                    "task_id": "step_0",
                    "key": "return_value",
                    "value": b'{"rows": 1234}',
                    "serializer": "json",
                    "reference": None,
                    "size": 14,
                    "created_at": ended,
                }
            )
        conn.execute(sa.insert(task_instances), instances)
        conn.execute(sa.insert(task_tries), tries)
        conn.execute(sa.insert(state_events), events)
        conn.execute(sa.insert(task_results), results)
    line = "2024-01-01 00:00:00 INFO step started\n" * 20
    for folder in folder_of.values():
        folder.mkdir(parents=True, exist_ok=True)
        for t in range(tasks):
            (folder / f"step_{t}.1.log").write_text(line)


def _instance(pk: int, ordinal: int, task: str, at: dt.datetime) -> dict[str, Any]:
    return {
        "run_pk": pk,
        "task_id": task,
        "ordinal": ordinal,
        "state": "success",
        "try_number": 1,
        "max_tries": 1,
        "node": {"operator": "PythonOperator"},
        "upstream": [f"step_{ordinal - 1}"] if ordinal else [],
        "operator": "PythonOperator",
        "priority_weight": 1,
        "pool": "default_pool",
        "pool_slots": 1,
        "queue": "default",
        "group_id": None,
        "start_date": at,
        "end_date": at,
        "duration": 0.5,
        "hostname": "worker-1",
        "pid": 4242,
        "heartbeat_at": at,
        "next_try_at": None,
        "updated_at": at,
    }


def _try(pk: int, task: str, at: dt.datetime, log_path: str) -> dict[str, Any]:
    return {
        "run_pk": pk,
        "task_id": task,
        "try_number": 1,
        "state": "success",
        "start_date": at,
        "end_date": at,
        "duration": 0.5,
        "hostname": "worker-1",
        "pid": 4242,
        "error": None,
        "traceback": None,
        "log_path": log_path,
        "rendered": None,
    }


def _event(pk: int, task: str | None, old: str | None, new: str, at: dt.datetime) -> dict[str, Any]:
    return {"run_pk": pk, "task_id": task, "old": old, "new": new, "reason": "", "try_number": 1, "at": at}


def database_bytes(engine: sa.Engine) -> int:
    backend = engine.dialect.name
    if backend == "sqlite":
        path = Path(str(engine.url.database))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    with read_transaction(engine) as conn:
        if backend == "postgresql":
            return int(conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one())
        return int(
            conn.execute(
                sa.text(
                    "SELECT COALESCE(SUM(data_length + index_length + data_free), 0) FROM information_schema.tables "
                    "WHERE table_schema = DATABASE()"
                )
            ).scalar_one()
        )


def folder_size(folder: Path) -> tuple[int, int]:
    files = size = 0
    for root, _dirs, names in os.walk(folder):
        for name in names:
            files += 1
            size += os.stat(os.path.join(root, name)).st_size
    return files, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=3, help="task instances (and tries, and log files) per run")
    parser.add_argument("--retention", type=int, default=30, help="days kept; 0 keeps everything")
    parser.add_argument("--url", default=None, help="an empty database (default: a SQLite file in a temp folder)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ductwork-retention-"))
    url = args.url or f"sqlite:///{tmp / 'ductwork.db'}"
    logs = tmp / "logs"
    engine = create_engine(url)
    migrate.upgrade(engine)
    per_day = args.runs // args.days
    print(
        f"# {args.runs:,} runs over {args.days} days ({per_day}/day, {args.tasks} tasks each), "
        f"retention {args.retention or 'off'} days, {engine.dialect.name}"
    )
    header = ("day", 5), ("runs written", 12), ("runs kept", 10), ("db MB", 8), ("log files", 10), ("logs MB", 8)
    print(" ".join(f"{name:>{width}}" for name, width in header), f"{'clean s':>8}")
    written = 0
    started = time.perf_counter()
    try:
        for day in range(args.days):
            _day(engine, logs, day, per_day, args.tasks)
            written += per_day
            took = 0.0
            if args.retention:
                t = time.perf_counter()
                cleanup.clean(
                    engine,
                    older_than=dt.timedelta(days=args.retention),
                    logs=logs,
                    now=T0 + dt.timedelta(days=day, hours=1),
                    batch_size=20,
                    target_seconds=0.05,
                )
                took = time.perf_counter() - t
            if (day + 1) % 10 == 0 or day == 0:
                with read_transaction(engine) as conn:
                    kept = conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()
                files, size = folder_size(logs)
                print(
                    f"{day + 1:>5} {written:>12,} {kept:>10,} {database_bytes(engine) / 1e6:>8.1f} "
                    f"{files:>10,} {size / 1e6:>8.1f} {took:>8.2f}",
                    flush=True,
                )
        print(f"# {time.perf_counter() - started:.0f} s in all")
    finally:
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
