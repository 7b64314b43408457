"""No-op tries through the local worker pool: what the executor itself costs per try.

    python benchmarks/pool_roundtrip.py [--workers 2] [--sizes 1000 10000] [--logs [DIR]]

Prints one table. Rows:

- ``pipe round trip``: a bare message to a forkserver process and back, the floor on this
  machine for anything that runs a try in another process;
- ``chain``: one try at a time (submit, wait for its outcome, submit the next), so each row
  is the latency of a try: two messages, two process wake-ups, ``execute_try`` in a worker;
- ``fan-out``: all tries submitted at once (the pool keeps the ones beyond its workers and
  hands them out as workers finish), so each row is the throughput of the pool;
- ``via Supervisor``: the same shapes as runs driven by ``engine.supervisor.Supervisor`` (the
  run loop, with its tracker) and no event sink: the engine without its database;
- ``fresh``: a chain with ``mode="fresh"`` (a new process per try, which imports the flow
  file again: a 10-task one here), for comparison.

Tries run ``EmptyOperator``s of a 10,000-task flow file written to a temporary folder; every
worker imports it once, before timing starts. The scheduler, the tracker and the database are
not involved: this measures the executor, for the engine's budget of 1 ms per task (chain)
and 0.3 ms per task (fan-out). With ``--logs`` every try gets its own log file (in a new
folder per task, as ``try_log_path`` lays them out) under DIR (a temporary folder if not
given); creating a file and a folder costs what the file system makes it cost, so compare a
disk folder with one on tmpfs (``--logs /dev/shm/x``) to see the pool's own share.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path

from ductwork.core.clock import SystemClock
from ductwork.core.context import RunInfo
from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.engine.executor import TryFinished, TryKey, TryRequest
from ductwork.engine.executors.pool import PoolExecutor
from ductwork.engine.supervisor import Supervisor

FLOW = """\
from ductwork import EmptyOperator, Flow

class Noop(EmptyOperator):  # runs (an EmptyOperator with nothing attached is not run at all)
    def execute(self, context):
        return None

with Flow("{flow_id}") as flow:
    for i in range({n}):
        Noop(task_id=f"t{{i}}")
"""


def _echo(conn: Connection) -> None:
    while (message := conn.recv()) is not None:
        conn.send(message)


def pipe_round_trip(n: int) -> float:
    """Seconds for ``n`` round trips of a small tuple to a forkserver process."""
    ctx = multiprocessing.get_context("forkserver")
    here, there = ctx.Pipe()
    process = ctx.Process(target=_echo, args=(there,))
    process.start()
    there.close()
    message = ("run", 1, "noop/run", "t1", 1)
    here.send(message)
    here.recv()
    started = time.perf_counter()
    for _ in range(n):
        here.send(message)
        here.recv()
    elapsed = time.perf_counter() - started
    here.send(None)
    process.join()
    return elapsed


def via_supervisor(pool: PoolExecutor, n: int, *, chain: bool, run_id: str) -> float:
    """Seconds for one run of ``n`` no-op tasks (a chain, or all independent) through the run loop."""
    nodes = {f"t{i}": NodeSpec(f"t{i}", upstream=(f"t{i - 1}",) if chain and i else ()) for i in range(n)}
    now = dt.datetime.now(dt.UTC)
    supervisor = Supervisor(pool, SystemClock())
    supervisor.add_run(RunInfo("noop", run_id, now, now, now), FlowGraph(FlowMeta("noop"), nodes))
    started = time.perf_counter()
    supervisor.run_until_done()
    return time.perf_counter() - started


class Bench:
    def __init__(self, pool: PoolExecutor, flow_id: str, tasks: int, log_dir: Path | None) -> None:
        self.pool = pool
        self.log_dir = log_dir
        now = dt.datetime.now(dt.UTC)
        self.run = RunInfo(flow_id, "bench", now, now, now)
        self.nodes = [NodeSpec(f"t{i}") for i in range(tasks)]
        self.try_number = 0

    def request(self, i: int) -> TryRequest:
        node = self.nodes[i % len(self.nodes)]
        log = str(self.log_dir / self.run.flow_id / node.task_id / f"{self.try_number}.log") if self.log_dir else None
        return TryRequest(TryKey(self.run.key, node.task_id, self.try_number), node, self.run, (), log)

    def finish(self, count: int) -> None:
        done = 0
        while done < count:
            for event in self.pool.wait(None):
                if isinstance(event, TryFinished):
                    if event.outcome.state != "success":
                        raise SystemExit(f"{event.key.task_id} failed: {event.outcome.error}")
                    done += 1

    def chain(self, n: int) -> float:
        self.try_number += 1
        started = time.perf_counter()
        for i in range(n):
            self.pool.submit(self.request(i))
            self.finish(1)
        return time.perf_counter() - started

    def fan_out(self, n: int) -> float:
        self.try_number += 1
        started = time.perf_counter()
        for i in range(n):
            self.pool.submit(self.request(i))
        self.finish(n)
        return time.perf_counter() - started

    def warm_up(self) -> None:
        """Every worker imports the flow file before anything is timed."""
        self.try_number += 1
        for i in range(self.pool.parallelism):
            self.pool.submit(self.request(i))
        self.finish(self.pool.parallelism)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--fresh", type=int, default=100, help="tries in the fresh-process row (0: skip)")
    parser.add_argument("--logs", nargs="?", const="", default=None, metavar="DIR", help="a log file per try")
    args = parser.parse_args()

    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory(prefix="ductwork-bench-") as tmp:
        files = {"noop": Path(tmp) / "noop.py", "small": Path(tmp) / "small.py"}
        files["noop"].write_text(FLOW.format(flow_id="noop", n=10_000))
        files["small"].write_text(FLOW.format(flow_id="small", n=10))
        flow_files = {k: str(v) for k, v in files.items()}
        log_dir = None if args.logs is None else Path(tempfile.mkdtemp(prefix="logs-", dir=args.logs or tmp))
        pool = PoolExecutor(parallelism=args.workers, flow_files=flow_files)
        pool.start()  # first: it starts the forkserver with Ductwork preloaded
        rows.append(("pipe round trip (floor)", 10_000, pipe_round_trip(10_000)))
        bench = Bench(pool, "noop", 10_000, log_dir)
        try:
            bench.warm_up()
            for n in args.sizes:
                rows.append((f"chain, {args.workers} warm workers", n, bench.chain(n)))
                rows.append((f"fan-out, {args.workers} warm workers", n, bench.fan_out(n)))
            if log_dir is None:
                for n in args.sizes:
                    rows.append(("chain via Supervisor", n, via_supervisor(pool, n, chain=True, run_id=f"c{n}")))
                    rows.append(("fan-out via Supervisor", n, via_supervisor(pool, n, chain=False, run_id=f"f{n}")))
        finally:
            pool.shutdown()
        if args.fresh:
            fresh = PoolExecutor(parallelism=args.workers, mode="fresh", flow_files=flow_files)
            fresh.start()
            try:
                seconds = Bench(fresh, "small", 10, log_dir).chain(args.fresh)
                rows.append((f"chain, fresh process per try ({args.workers})", args.fresh, seconds))
            finally:
                fresh.shutdown()
        if log_dir is not None and args.logs:
            shutil.rmtree(log_dir, ignore_errors=True)
    _print(rows, args, os.cpu_count())


def _print(rows: list[tuple[str, int, float]], args: argparse.Namespace, cpus: int | None) -> None:
    logs = "off" if args.logs is None else f"on ({args.logs or tempfile.gettempdir()})"
    print(f"Ductwork pool round trip: no-op tries, {cpus} CPUs, Python {sys.version.split()[0]}, log files {logs}")
    header = f"{'case':<40} {'tries':>7} {'seconds':>9} {'ms/try':>8} {'tries/s':>9}"
    print(header)
    print("-" * len(header))
    for name, n, s in rows:
        print(f"{name:<40} {n:>7,} {s:>9.3f} {s / n * 1e3:>8.3f} {n / s:>9,.0f}")


if __name__ == "__main__":
    main()
