"""Whole-engine benchmark: a real ``ductwork scheduler`` process, its worker pool and the store.

For each database and shape (a chain, and a fan-out/fan-in) and size N, a flow of N no-op tasks
is registered, one run is triggered, and the run is timed from the database's own records. The
tasks are an operator that runs and does nothing: they go through the workers. The ``empty``
shape is a fan-out of ``EmptyOperator``s, which the scheduler records as succeeded without a
worker (ADR 0021).

- wall: the run's start to its end as recorded by the scheduler (``empty``: from the trigger
  until the database shows the run ended, since its end is stamped before its records are
  written);
- per-task overhead: wall / N; throughput: N / wall;
- task-to-task latency (chain): a task's recorded end to its downstream's recorded start,
  median and 99th percentile;
- scheduler peak RSS: the scheduler process's high-water mark (VmHWM), workers excluded.

After each run the benchmark reads the database back and fails unless it holds one successful
try per task, each with its start and end (issue 15: no figure is bought by dropping a record).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FLOW = textwrap.dedent(
    """
    from ductwork import EmptyOperator, Flow


    class Noop(EmptyOperator):
        # Runs, and does nothing: an EmptyOperator with nothing attached is not run at all.
        def execute(self, context):
            return None


    N = {n}
    # "empty": a fan-out of EmptyOperators, which the scheduler records as succeeded without a
    # worker; the other shapes' tasks run on the workers.
    Task = EmptyOperator if "{shape}" == "empty" else Noop
    with Flow("bench_{shape}_{n}", max_active_runs=1) as flow:
        if "{shape}" == "chain":
            previous = None
            for i in range(N):
                op = Task(task_id=f"t{{i}}")
                if previous is not None:
                    previous >> op
                previous = op
        else:
            start, end = Task(task_id="start"), Task(task_id="end")
            for i in range(N - 2):
                start >> Task(task_id=f"t{{i}}") >> end
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


SCRATCH: contextvars.ContextVar[str | None] = contextvars.ContextVar("scratch", default=None)
"""Where measurements keep their folders (``run.py`` sets it and deletes it at the end)."""


@contextlib.contextmanager
def _folder() -> Iterator[Path]:
    scratch = SCRATCH.get()
    path = Path(tempfile.mkdtemp(prefix="ductwork-bench-", dir=scratch))
    try:
        yield path
    finally:
        if scratch is None:
            shutil.rmtree(path, ignore_errors=True)


def file_create_us(folder: Path, n: int = 2000) -> float:
    """What creating (and writing, closing) one small file costs on this file system right now,
    in microseconds: every try creates its own log file, so this moves the engine's figures."""
    target = Path(tempfile.mkdtemp(prefix="create-", dir=folder))
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    started = time.perf_counter()
    for i in range(n):
        fd = os.open(target / f"t{i}.1.log", flags, 0o644)
        os.write(fd, b"a line of log\n")
        os.close(fd)
    return (time.perf_counter() - started) / n * 1e6


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU time (user + system) of ``pid`` itself and of all its live descendants (the
    forkserver and the workers): where a run's CPU goes, scheduler or workers."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    descendants, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - descendants
        descendants |= frontier
    return times.get(pid, 0.0), sum(times.get(d, 0.0) for d in descendants)


Inspect = Callable[[Any, str, str], dict[str, Any]]
"""Called with the store's engine, the flow id and the measured run's id once the scheduler has
stopped and before the database goes away; what it returns joins the figures."""


def check_records(conn: Any, run_pk: int, n: int) -> None:
    """Fail unless run ``run_pk`` holds ``n`` successful task instances and ``n`` successful
    tries, each with a start and an end: every try the run made is in the database."""
    import sqlalchemy as sa

    from ductwork.store.tables import task_instances as ti
    from ductwork.store.tables import task_tries as tt

    def complete(table: Any) -> int:
        stmt = sa.select(sa.func.count()).where(
            table.c.run_pk == run_pk,
            table.c.state == "success",
            table.c.start_date.is_not(None),
            table.c.end_date.is_not(None),
        )
        return int(conn.execute(stmt).scalar_one())

    tries, instances = complete(tt), complete(ti)
    total = int(conn.execute(sa.select(sa.func.count()).where(tt.c.run_pk == run_pk)).scalar_one())
    if (tries, instances, total) != (n, n, n):
        raise AssertionError(
            f"run {run_pk}: {tries} complete tries of {total} and {instances} complete task instances, "
            f"expected {n} of each"
        )


def measure(backend: str, shape: str, n: int, workers: int = 2, inspect: Inspect | None = None) -> dict[str, Any]:
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

    # The folder (flow, SQLite file, every try's log) is kept until the whole benchmark ends: on
    # a file system without a journal, ext4 scans recently deleted inodes on every file it
    # creates for a minute or more after a mass deletion, so deleting one measurement's 20,000
    # log files would slow the next measurement's log files by 10x (see RESULTS.md).
    with _folder() as tmp, database(backend, tmp) as url:
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

        seen_s = 0.0

        def run_once(run_id: str) -> Any:
            nonlocal seen_s
            began = time.monotonic()
            record = run_service.trigger(engine, flow.flow_id, run_id=run_id)
            deadline = time.monotonic() + max(600, n * 0.02)
            while time.monotonic() < deadline:
                with read_transaction(engine) as conn:
                    current = run_repo.get_run_by_pk(conn, record.pk)
                assert current is not None
                if current.state.is_terminal:
                    seen_s = time.monotonic() - began
                    return current
                time.sleep(0.05)
            raise TimeoutError(f"run {run_id} did not finish")

        try:
            # A warm-up run first: each worker imports the flow's file once (for 10,000 tasks,
            # seconds), and the figures are about the steady state, not that one-time cost.
            run_once("warmup")
            cpu_before = _cpu_seconds(proc.pid)
            current = run_once("bench")
            cpu_after = _cpu_seconds(proc.pid)
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
            check_records(conn, record.pk, n)
            tries = {t.task_id: t for t in task_repo.list_tries(conn, record.pk)} if shape == "chain" else {}
        extra = inspect(engine, flow.flow_id, record.run_id) if inspect is not None else {}
        engine.dispose()
    assert current.start_date is not None and current.end_date is not None
    wall = (current.end_date - current.start_date).total_seconds()
    if shape == "empty":
        # Its tries end within one step, and the run's end is stamped before that step's
        # records are written: from the trigger until the database shows the run ended (its
        # records with it), which also counts the scheduler noticing the run and this poll.
        wall = seen_s
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
        "scheduler_cpu_ms": (cpu_after[0] - cpu_before[0]) / n * 1000,
        "workers_cpu_ms": (cpu_after[1] - cpu_before[1]) / n * 1000,
        **extra,
    }


def rows(backends: list[str], sizes: list[int]) -> Iterator[tuple[str, str, int, dict[str, Any]]]:
    for backend in backends:
        for shape in ("chain", "fan", "empty"):
            for n in sizes:
                yield backend, shape, n, measure(backend, shape, n)
