"""Whole-engine benchmark: a real ``ductwork scheduler`` process, its worker pool and the store.

For each database and shape (a chain, and a fan-out/fan-in) and size N, a flow of N no-op tasks
is registered, one run is triggered, and the run is timed from the database's own records:

- wall: the run's start to its end as recorded by the scheduler;
- per-task overhead: wall / N; throughput: N / wall;
- task-to-task latency (chain): a task's recorded end to its downstream's recorded start,
  median and 99th percentile;
- scheduler peak RSS: the scheduler process's high-water mark (VmHWM), workers excluded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

FLOW = textwrap.dedent(
    """
    from ductwork import EmptyOperator, Flow

    N = {n}
    with Flow("bench_{shape}_{n}", max_active_runs=1) as flow:
        if "{shape}" == "chain":
            previous = None
            for i in range(N):
                op = EmptyOperator(task_id=f"t{{i}}")
                if previous is not None:
                    previous >> op
                previous = op
        else:
            start, end = EmptyOperator(task_id="start"), EmptyOperator(task_id="end")
            for i in range(N - 2):
                start >> EmptyOperator(task_id=f"t{{i}}") >> end
    """
)


@contextlib.contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    import sqlalchemy as sa

    admin_url = os.environ.get("DUCTWORK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"ductwork_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(backend: str, shape: str, n: int, workers: int = 2) -> dict[str, float]:
    """One flow of ``n`` no-op tasks of ``shape``, run twice through a scheduler process;
    figures from the second (steady-state) run."""
    from ductwork.core.graph import FlowGraph  # noqa: F401  (imported for the loader below)
    from ductwork.loading import load_file
    from ductwork.services import runs as run_service
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine, read_transaction, transaction
    from ductwork.store.repo import flows as flow_repo
    from ductwork.store.repo import runs as run_repo
    from ductwork.store.repo import tasks as task_repo

    with tempfile.TemporaryDirectory(prefix="ductwork-bench-") as tmp_name, database(backend, Path(tmp_name)) as url:
        tmp = Path(tmp_name)
        flows = tmp / "flows"
        flows.mkdir()
        file = flows / f"bench_{shape}_{n}.py"
        file.write_text(FLOW.format(n=n, shape=shape))
        engine = create_engine(url)
        migrate.upgrade(engine)
        (flow,) = load_file(file).flows
        with transaction(engine) as conn:
            flow_repo.upsert_flow(conn, flow.to_graph(), fileloc=str(file))
        env = {
            **os.environ,
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_DATABASE_URL": url,
        }
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ductwork.cli",
                "scheduler",
                "--workers",
                str(workers),
                "--no-parse",
                "--poll-interval",
                "0.05",
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

        def run_once(run_id: str) -> Any:
            record = run_service.trigger(engine, flow.flow_id, run_id=run_id)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                with read_transaction(engine) as conn:
                    current = run_repo.get_run_by_pk(conn, record.pk)
                assert current is not None
                if current.state.is_terminal:
                    return current
                time.sleep(0.05)
            raise TimeoutError(f"run {run_id} did not finish")

        try:
            # A warm-up run first: each worker imports the flow's file once (for 10,000 tasks,
            # seconds), and the figures are about the steady state, not that one-time cost.
            run_once("warmup")
            current = run_once("bench")
            record = current
            peak = _peak_rss_mib(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        assert current.state == "success", f"run ended {current.state}"
        with read_transaction(engine) as conn:
            tries = {t.task_id: t for t in task_repo.list_tries(conn, record.pk)}
        engine.dispose()
    assert current.start_date is not None and current.end_date is not None
    wall = (current.end_date - current.start_date).total_seconds()
    gaps: list[float] = []
    if shape == "chain":
        for i in range(1, n):
            up, down = tries[f"t{i - 1}"], tries[f"t{i}"]
            if up.end_date and down.start_date:
                gaps.append((down.start_date - up.end_date).total_seconds() * 1000)
    return {
        "wall_s": wall,
        "tasks_per_s": n / wall,
        "per_task_ms": wall / n * 1000,
        "latency_median_ms": statistics.median(gaps) if gaps else float("nan"),
        "latency_p99_ms": statistics.quantiles(gaps, n=100)[98] if len(gaps) >= 100 else float("nan"),
        "peak_rss_mib": peak,
    }


def rows(backends: list[str], sizes: list[int]) -> Iterator[tuple[str, str, int, dict[str, Any]]]:
    for backend in backends:
        for shape in ("chain", "fan"):
            for n in sizes:
                yield backend, shape, n, measure(backend, shape, n)
