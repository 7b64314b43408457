"""Ductwork benchmarks: prints a table of figures. Run with `make benchmark`.

Sections:
- ``tracker``: the readiness tracker alone (decisions per second, no execution);
- ``in-process``: whole runs through the supervisor and the in-process executor (no store);
- ``engine-sqlite``, ``engine-postgres``: a real ``ductwork scheduler`` process with its worker
  pool and the store (see ``benchmarks/engine.py``), with scheduler peak RSS; the ``empty`` rows
  are a fan-out of ``EmptyOperator``s, which the scheduler records without a worker (ADR 0021);
- ``web`` (only when asked for, ``--sections web``): the REST API and the pages of the web UI
  on 10,000-task flows with 25 runs (``benchmarks/web.py``; pages need Chromium);
- ``cli``: what a user types, as whole processes (``benchmarks/cli_runs.py``): the start-up of
  commands that do little else (``--version``, ``flows list``, ``runs list`` on an existing and
  on a new ``DUCTWORK_HOME``, against ``python -c pass``), then ``ductwork run`` of
  operator and ``@task``/``@flow`` flows and ``ductwork build`` of a Luigi-style module, recorded
  in the metadata database, at 100 and 1,000 tasks, against Luigi's own local scheduler on the
  same module (Luigi installed by the benchmark in a throwaway virtual environment);
- ``trigger``: under a running scheduler, ``ductwork trigger`` / the REST API to the first task's
  start, ``trigger --wait`` from the run's end to the command's exit (median and p99), and a
  scheduler started on 100 flow files until they are listed, on SQLite and PostgreSQL
  (``benchmarks/trigger.py``);
- ``luigi-workers`` (only when asked for, ``--sections luigi-workers``): ``ductwork build`` of
  busy Luigi tasks with 1 and 2 workers (each task in a process of its own, ADR 0028) and of
  Ductwork's own tasks with 2 (threads), wall time (``benchmarks/luigi_workers.py``);
- ``big`` (only when asked for, ``--sections big``): 100,000-task chain and fan-out under the
  scheduler on SQLite and a fan-out on PostgreSQL, with scheduler peak RSS, the database read
  back (every try recorded), and the grid and graph REST API calls on that run
  (``benchmarks/big.py``; ``--sizes`` overrides the 100,000).

Engine rows also give the CPU time per task of the scheduler process and of its workers (a
run's CPU on 2 cores bounds its wall time), and the table is framed by what creating one small
file costs on the benchmark's file system before and after: on this VM's journal-less ext4 that
cost moves between ~10 and ~1,300 us with recent deletions. Short tries no longer create a log
file each (ADR 0018); longer ones and the run's folders still do.

Speed is measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ductwork import EmptyOperator, Flow
from ductwork.core.clock import SystemClock
from ductwork.core.graph import NodeSpec
from ductwork.core.states import TaskState
from ductwork.engine.local import run_locally
from ductwork.engine.tracker import RunTracker


class Noop(EmptyOperator):
    """Runs, and does nothing: an ``EmptyOperator`` with nothing attached is not run at all."""

    def execute(self, context: Any) -> Any:
        return None


def chain_flow(n: int) -> Flow:
    with Flow(f"chain_{n}") as flow:
        previous = None
        for i in range(n):
            op = Noop(task_id=f"t{i}")
            if previous is not None:
                previous >> op
            previous = op
    return flow


def fan_flow(n: int) -> Flow:
    with Flow(f"fan_{n}") as flow:
        start, end = Noop(task_id="start"), Noop(task_id="end")
        for i in range(n - 2):
            start >> Noop(task_id=f"t{i}") >> end
    return flow


def bench_tracker(n: int, shape: str) -> dict[str, float]:
    if shape == "chain":
        nodes = {f"t{i}": NodeSpec(f"t{i}", (f"t{i - 1}",) if i else ()) for i in range(n)}
    else:
        nodes = {"start": NodeSpec("start")}
        nodes.update({f"t{i}": NodeSpec(f"t{i}", ("start",)) for i in range(n - 2)})
        nodes["end"] = NodeSpec("end", tuple(f"t{i}" for i in range(n - 2)))
    started = time.perf_counter()
    tracker = RunTracker(nodes)
    tracker.start()
    while not tracker.finished:
        for task_id in tracker.take_ready():
            tracker.set_state(task_id, TaskState.QUEUED)
            tracker.set_state(task_id, TaskState.RUNNING)
            tracker.set_state(task_id, TaskState.SUCCESS)
    wall = time.perf_counter() - started
    return {"wall_s": wall, "per_task_ms": wall / n * 1000, "tasks_per_s": n / wall}


def bench_in_process(n: int, shape: str) -> dict[str, float]:
    flow = chain_flow(n) if shape == "chain" else fan_flow(n)
    started = time.perf_counter()
    summary = run_locally(flow, clock=SystemClock(), parallelism=2)
    wall = time.perf_counter() - started
    assert summary.state == "success"
    gaps = []
    if shape == "chain":
        for i in range(1, n):
            up, down = summary.tasks[f"t{i - 1}"].tries[0], summary.tasks[f"t{i}"].tries[0]
            if up.ended_at and down.started_at:
                gaps.append((down.started_at - up.ended_at).total_seconds() * 1000)
    return {
        "wall_s": wall,
        "per_task_ms": wall / n * 1000,
        "tasks_per_s": n / wall,
        "latency_median_ms": statistics.median(gaps) if gaps else float("nan"),
        "latency_p99_ms": statistics.quantiles(gaps, n=100)[98] if len(gaps) > 100 else float("nan"),
    }


def bench_engine(backend: str) -> Callable[[int, str], dict[str, float]]:
    """The median (by ms per task) of three measurements for N <= 1,000, one for larger N: this
    2-core VM's speed moves by tens of percent from one minute to the next."""

    def run(n: int, shape: str) -> dict[str, float]:
        import engine

        reps = 3 if n <= 1000 else 1
        results = sorted((engine.measure(backend, shape, n) for _ in range(reps)), key=lambda r: r["per_task_ms"])
        return results[len(results) // 2]

    return run


SECTIONS: dict[str, Callable[[int, str], dict[str, float]]] = {
    "tracker": bench_tracker,
    "in-process": bench_in_process,
    "engine-sqlite": bench_engine("sqlite"),
    "engine-postgres": bench_engine("postgres"),
}


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(Path(__file__).parent))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--sections", default=",".join([*SECTIONS, "cli", "trigger"]))
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    big_sizes = sizes if "--sizes" in (argv if argv is not None else sys.argv) else [100_000]
    machine = f"{platform.platform()}, Python {platform.python_version()}"
    print(f"# Ductwork benchmarks — {machine}, {time.strftime('%Y-%m-%d')}")
    import engine  # benchmarks/engine.py

    scratch = tempfile.mkdtemp(prefix="ductwork-benchmarks-")
    engine.SCRATCH.set(scratch)
    cost = engine.file_create_us(Path(scratch))
    print(f"# creating a file here costs {cost:.1f} us now (before); load average {os.getloadavg()[0]:.1f}")
    columns = ["section", "shape", "N", "wall s", "tasks/s", "ms/task", "t2t med ms", "t2t p99 ms", "RSS MiB"]
    columns += ["sched CPU ms", "workers CPU ms"]
    widths = [15, 6, 6, 8, 9, 8, 10, 10, 7, 12, 14]
    header = "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)) + " |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    nan = float("nan")
    api_rows: list[tuple[str, str, int, dict[str, tuple[float, float, int]]]] = []

    def row(section: str, shape: str, n: int, r: dict[str, Any]) -> None:
        print(
            f"| {section:<15} | {shape:<6} | {n:>6} | {r['wall_s']:>8.3f} | {r['tasks_per_s']:>9.0f} | "
            f"{r['per_task_ms']:>8.3f} | {r.get('latency_median_ms', nan):>10.3f} | "
            f"{r.get('latency_p99_ms', nan):>10.3f} | {r.get('peak_rss_mib', nan):>7.1f} | "
            f"{r.get('scheduler_cpu_ms', nan):>12.3f} | {r.get('workers_cpu_ms', nan):>14.3f} |",
            flush=True,
        )

    try:
        for section in args.sections.split(","):
            if section == "web":
                from web import run_web  # benchmarks/web.py, next to this file

                run_web()
                continue
            if section == "cli":
                import cli_runs  # benchmarks/cli_runs.py, next to this file

                print(f"# cli: whole processes, median of {cli_runs.REPEATS} interleaved runs")
                cli_runs.print_startup(cli_runs.measure_startup())
                cli_runs.print_rows(cli_runs.measure([100, 1000]))
                continue
            if section == "luigi-workers":
                import luigi_workers  # benchmarks/luigi_workers.py, next to this file

                luigi_workers.print_rows(luigi_workers.measure())
                continue
            if section == "trigger":
                import trigger  # benchmarks/trigger.py, next to this file

                for backend in ("sqlite", "postgres"):
                    trigger.print_rows(backend)
                continue
            if section == "big":
                import big  # benchmarks/big.py, next to this file

                for backend, shape in big.ENGINE_ROWS:
                    for n in big_sizes:
                        r = big.measure(backend, shape, n)
                        row(f"big-{backend}", shape, n, r)
                        api_rows.append((backend, shape, n, r["api"]))
                continue
            shapes = ("chain", "fan", "empty") if section.startswith("engine-") else ("chain", "fan")
            for shape in shapes:
                for n in sizes:
                    row(section, shape, n, SECTIONS[section](n, shape))
        cost = engine.file_create_us(Path(scratch))
        print(f"# creating a file here costs {cost:.1f} us now (after); load average {os.getloadavg()[0]:.1f}")
        if api_rows:
            import big

            big.print_api_rows(api_rows)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
