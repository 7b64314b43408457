"""Remote workers: a real scheduler and ``ductwork worker`` processes over Celery on Redis.

    python benchmarks/remote.py [--tasks 1000] [--database postgresql+psycopg://...]

Prints two tables:

- (a) 1,000 tasks that each sleep 50 ms on 1, 2 and 4 workers of 8 slots: the run's wall time
  (the run's start to its end, as the database records them) against the ideal
  (N x 50 ms / slots), and the efficiency (ideal / wall; the target is 80% or more);
- (b) a no-op fan-out of 1,000 tasks through Celery on Redis: milliseconds per task end to end
  (target: 2 ms or less).

It starts its own Redis (``redis-server`` on a free port) and uses a new database on the
PostgreSQL server given (default: the local one), dropped at the end. The machine's other load
moves these figures: run it on a quiet machine for numbers to compare.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

SLEEPY = """
import time
from ductwork import Flow, PythonOperator, EmptyOperator

def nap():
    time.sleep(0.05)

with Flow("sleepy", schedule=None, max_active_tasks=100000) as sleepy:
    for i in range({n}):
        PythonOperator(task_id=f"t{{i}}", python_callable=nap)

class Noop(EmptyOperator):  # runs (an EmptyOperator with nothing attached is not run at all)
    def execute(self, context):
        return None

with Flow("noop_fan", schedule=None, max_active_tasks=100000) as noop_fan:
    for i in range({n}):
        Noop(task_id=f"t{{i}}")
"""


def process_cpu() -> dict[int, tuple[int, str, float]]:
    """Every live process: pid -> (parent pid, command name, CPU seconds used so far)."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, tuple[int, str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                text = fh.read()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        out[int(entry)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_by_group(groups: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds so far of each group of process trees, and of the PostgreSQL server."""
    procs = process_cpu()
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in procs.items():
        children.setdefault(parent, []).append(pid)
    totals: dict[str, float] = {}
    for label, roots in groups.items():
        stack, total = list(roots), 0.0
        while stack:
            pid = stack.pop()
            if pid in procs:
                total += procs[pid][2]
                stack.extend(children.get(pid, []))
        totals[label] = total
    totals["postgres"] = sum(cpu for _, name, cpu in procs.values() if name.startswith("postgres"))
    return totals


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Bench:
    def __init__(self, root: Path, db_url: str, broker: str, tasks: int) -> None:
        self.root, self.db_url, self.broker, self.tasks = root, db_url, broker, tasks
        self.flows = root / "flows"
        self.flows.mkdir(parents=True)
        (self.flows / "bench.py").write_text(SLEEPY.format(n=tasks))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.engine = sa.create_engine(db_url, poolclass=sa.NullPool)

    def env(self, home: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DUCTWORK_")}
        env.update(
            DUCTWORK_HOME=str(self.root / home),
            DUCTWORK_DATABASE_URL=self.db_url,
            DUCTWORK_BROKER_URL=self.broker,
            DUCTWORK_EXECUTOR="celery",
            DUCTWORK_FLOWS_FOLDER=str(self.flows),
            DUCTWORK_REMOTE_LOG_URL=f"file://{self.root / 'remote-logs'}",
        )
        return env

    def start(self, home: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.root / f"{home}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "ductwork.cli", *args],
            env=self.env(home),
            cwd=self.root,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.procs.remove(proc)

    def query(self, sql: str, **params: object) -> list[sa.Row]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(sa.text(sql), params))
        except sa.exc.ProgrammingError:
            return []

    def wait(self, what: str, check, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}; logs in {self.root}")
            time.sleep(0.1)

    def run(self, flow: str, run_id: str) -> float:
        """Trigger a run; its wall time in seconds from the database's start and end."""
        subprocess.run(
            [sys.executable, "-m", "ductwork.cli", "trigger", flow, "--run-id", run_id],
            env=self.env("cli"),
            cwd=self.root,
            check=True,
            capture_output=True,
        )
        done = "SELECT start_date, end_date, state FROM runs WHERE flow_id = :f AND run_id = :r"

        def ended() -> bool:
            rows = self.query(done, f=flow, r=run_id)
            return bool(rows) and rows[0].state in ("success", "failed")

        self.wait(f"run {flow}/{run_id}", ended)
        row = self.query(done, f=flow, r=run_id)[0]
        if row.state != "success":
            raise SystemExit(f"run {flow}/{run_id} ended {row.state}; logs in {self.root}")
        return (row.end_date - row.start_date).total_seconds()

    def workers(self, n: int, slots: int) -> list[subprocess.Popen[bytes]]:
        procs = [
            self.start(f"w{i}", "worker", "--concurrency", str(slots), "--name", f"bench{i}", "--log-level", "warning")
            for i in range(n)
        ]
        live = "SELECT count(*) AS n FROM workers WHERE state = 'running' AND name LIKE 'bench%%'"
        self.wait("the workers", lambda: (rows := self.query(live)) and rows[0].n >= n, 120)
        return procs

    def close(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)
        self.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--workers", default="1,2,4", help='worker counts for table (a); "" skips it')
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ductwork-remote-bench-"))
    port = free_port()
    redis = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(root)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    admin = sa.create_engine(args.database, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"ductwork_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    db_url = sa.make_url(args.database).set(database=name).render_as_string(hide_password=False)
    bench = Bench(root, db_url, f"redis://127.0.0.1:{port}/0", args.tasks)
    try:
        scheduler = bench.start("scheduler", "scheduler", "--log-level", "warning")
        bench.wait("the flows", lambda: len(bench.query("SELECT flow_id FROM flows")) >= 2, 120)
        print(f"(a) {args.tasks} tasks sleeping 50 ms, workers of 8 slots, Celery on Redis, PostgreSQL")
        print(f"{'workers':>8} {'slots':>6} {'ideal s':>8} {'wall s':>8} {'efficiency':>10} {'CPU s (all)':>12}")
        for count in (int(c) for c in args.workers.split(",") if c):
            procs = bench.workers(count, 8)
            bench.run("sleepy", f"warm{count}")  # warm: imports, bundles, connections
            groups = {"scheduler": [scheduler.pid], "workers": [p.pid for p in procs], "redis": [redis.pid]}
            before = cpu_by_group(groups)
            wall = bench.run("sleepy", f"sleepy{count}")
            after = cpu_by_group(groups)
            used = sum(after.values()) - sum(before.values())
            ideal = args.tasks * 0.05 / (8 * count)
            figures = f"{count:>8} {8 * count:>6} {ideal:>8.2f} {wall:>8.2f} {ideal / wall:>10.0%} {used:>12.2f}"
            parts = ", ".join(f"{k} {after[k] - before[k]:.2f}" for k in after)
            print(f"{figures}  ({parts})", flush=True)
            for proc in procs:
                bench.stop(proc)
            with bench.engine.begin() as conn:  # stopped workers stop counting as capacity
                conn.execute(sa.text("UPDATE workers SET state = 'stopped'"))
        print()
        print(f"(b) no-op fan-out of {args.tasks} through Celery on Redis (2 workers of 4 slots)")
        procs = bench.workers(2, 4)
        bench.run("noop_fan", "warm")
        groups = {"scheduler": [scheduler.pid], "workers": [p.pid for p in procs], "redis": [redis.pid]}
        before = cpu_by_group(groups)
        walls = [bench.run("noop_fan", f"fan{i}") for i in range(3)]
        after = cpu_by_group(groups)
        best, median = min(walls), sorted(walls)[1]
        print(f"{'runs':>5} {'median s':>9} {'ms/task (median)':>17} {'ms/task (best)':>15}")
        print(f"{len(walls):>5} {median:>9.2f} {median * 1000 / args.tasks:>17.2f} {best * 1000 / args.tasks:>15.2f}")
        print()
        print("CPU ms per task over those runs (2 cores: their sum / 2 bounds ms/task from below)")
        print(
            "  ".join(
                f"{label} {(after[label] - before[label]) * 1000 / (len(walls) * args.tasks):.2f}" for label in after
            )
        )
        bench.stop(scheduler)
    finally:
        bench.close()
        redis.terminate()
        redis.wait()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
