"""Trigger latency under a running scheduler, and how soon a new scheduler lists its flows.

A ``ductwork scheduler`` (default settings, 2 warm workers) and a ``ductwork webserver`` run on
one database; a one-task flow is triggered again and again, interleaving three ways:

- ``ductwork trigger FLOW`` (a CLI process): from the command's launch to the task's recorded
  start (the CLI's own start-up included), and from the command's exit to that start; the same
  with ``DUCTWORK_TRIGGER_HANDOFF=false`` (the command writes the run itself instead of handing
  it to the scheduler, ADR 0023);
- ``ductwork trigger FLOW --wait``: from the run's recorded end to the command's exit;
- the REST API (``POST /api/v1/flows/FLOW/runs`` with a token): from the request to the task's
  recorded start;
- ``ductwork trigger FLOW`` again while another run's task runs (the scheduler then waits in
  its worker pool, not idle), from the command's launch to the task's start.

Times are read from the database's records (the try's start, the run's end) against this
process's clock: one machine, one clock. Also: a scheduler started on a folder of 100 flow
files, from its launch until the database lists all of them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ONE = """
from ductwork import BashOperator, EmptyOperator, Flow

class Noop(EmptyOperator):  # runs (an EmptyOperator with nothing attached is not run at all)
    def execute(self, context):
        return None

with Flow("one") as flow:
    Noop(task_id="only")

with Flow("busy") as busy:  # keeps the scheduler's worker pool busy while "one" is triggered
    BashOperator(task_id="naps", bash_command="sleep 600")
"""

MANY = """
from ductwork import EmptyOperator, Flow

with Flow("listed_{i}") as flow:
    EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
"""


WORKER_RSS: list[float] = []
"""The largest warm worker's RSS (MiB) seen by ``measure_triggers``."""


def _ductwork() -> list[str]:
    return [str(Path(sys.executable).parent / "ductwork")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _process(argv: list[str], env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _quantiles(values: list[float]) -> tuple[float, float]:
    """Median and 99th percentile (of few samples: close to the largest)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    return statistics.median(values), statistics.quantiles(values, n=100, method="inclusive")[98]


def _env(tmp: Path, url: str, flows: Path) -> dict[str, str]:
    drop = ("DUCTWORK_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(DUCTWORK_HOME=str(tmp / "home"), DUCTWORK_FLOWS_FOLDER=str(flows), DUCTWORK_DATABASE_URL=url)
    return env


def measure_triggers(backend: str = "sqlite", repeats: int = 15) -> list[tuple[str, int, float, float]]:
    """Rows of (what, samples, median ms, p99 ms)."""
    import httpx

    import engine as bench_engine  # benchmarks/engine.py
    from ductwork.loading import load_file
    from ductwork.services import accounts
    from ductwork.services import runs as run_service
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine, read_transaction, transaction
    from ductwork.store.repo import flows as flow_repo
    from ductwork.store.repo import runs as run_repo
    from ductwork.store.repo import tasks as task_repo

    with bench_engine._folder() as tmp, bench_engine.database(backend, tmp) as url:
        flows = tmp / "flows"
        flows.mkdir()
        (flows / "one.py").write_text(ONE)
        engine = create_engine(url)
        migrate.upgrade(engine)
        with transaction(engine) as conn:
            for flow in load_file(flows / "one.py").flows:
                flow_repo.upsert_flow(conn, flow.to_graph(), fileloc=str(flows / "one.py"))
        accounts.create_user(engine, "bench", accounts.generate_password(), "operator")
        token = accounts.issue_token(engine, "bench", "bench").token
        env = _env(tmp, url, flows)
        port = _free_port()

        def finished(run_id: str) -> tuple[dt.datetime, dt.datetime]:
            """(the task's recorded start, the run's recorded end), once the run has ended."""
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with read_transaction(engine) as conn:
                    record = run_repo.get_run(conn, "one", run_id)
                    if record is not None and record.state.is_terminal:
                        (attempt,) = task_repo.list_tries(conn, record.pk)
                        assert record.state == "success", record
                        assert attempt.start_date is not None and record.end_date is not None
                        return attempt.start_date, record.end_date
                time.sleep(0.005)
            raise TimeoutError(f"run {run_id} did not finish")

        def ms(later: dt.datetime, earlier: float) -> float:
            return (later.timestamp() - earlier) * 1000

        samples: dict[str, list[float]] = {}
        scheduler = [*_ductwork(), "scheduler", "--workers", "2", "--no-parse", "--log-level", "warning"]
        webserver = [*_ductwork(), "webserver", "--port", str(port), "--log-level", "warning"]
        with (
            _process(scheduler, env) as scheduler_proc,
            _process(webserver, env),
            httpx.Client(timeout=30) as client,
        ):
            api = f"http://127.0.0.1:{port}/api/v1/flows/one/runs"
            headers = {"Authorization": f"Bearer {token}"}
            deadline = time.monotonic() + 180
            while True:  # the webserver is up
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"http://127.0.0.1:{port}/api/v1/flows", headers=headers).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError("the webserver did not start")
                time.sleep(0.1)
            run_service.trigger(engine, "one", run_id="warmup")  # the workers import the flow once
            finished("warmup")
            workers = [c for child in _children(scheduler_proc.pid) for c in [child, *_children(child)]]
            rss = [_rss_mib(w) for w in workers if "forkserver" not in Path(f"/proc/{w}/cmdline").read_text()]
            if rss:
                WORKER_RSS.append(max(rss))
            for i in range(repeats):
                run_id = f"cli-{i}"
                launched = time.time()
                command = [*_ductwork(), "trigger", "one", "--run-id", run_id]
                subprocess.run(command, env=env, check=True, capture_output=True)
                exited = time.time()
                started, _ = finished(run_id)
                samples.setdefault("ductwork trigger: launch -> task start", []).append(ms(started, launched))
                samples.setdefault("ductwork trigger: exit -> task start", []).append(ms(started, exited))

                run_id = f"cli-off-{i}"  # the same command writing the run itself (ADR 0023's fallback)
                launched = time.time()
                command = [*_ductwork(), "trigger", "one", "--run-id", run_id]
                off = {**env, "DUCTWORK_TRIGGER_HANDOFF": "false"}
                subprocess.run(command, env=off, check=True, capture_output=True)
                started, _ = finished(run_id)
                off_row = "ductwork trigger, handoff off: launch -> task start"
                samples.setdefault(off_row, []).append(ms(started, launched))

                run_id = f"wait-{i}"
                command = [*_ductwork(), "trigger", "one", "--run-id", run_id, "--wait"]
                subprocess.run(command, env=env, check=True, capture_output=True)
                exited = time.time()
                _, ended = finished(run_id)
                samples.setdefault("ductwork trigger --wait: run end -> exit", []).append(-ms(ended, exited))

                run_id = f"api-{i}"
                sent = time.time()
                response = client.post(api, json={"run_id": run_id}, headers=headers)
                assert response.status_code == 201, response.text
                started, _ = finished(run_id)
                samples.setdefault("API trigger: request -> task start", []).append(ms(started, sent))

            # A scheduler with a try running waits in its worker pool, not idle: the handoff
            # must wake it there too.
            run_service.trigger(engine, "busy", run_id="busy")
            deadline = time.monotonic() + 60
            while not _running(engine, "busy"):
                if time.monotonic() > deadline:
                    raise TimeoutError("the busy run did not start")
                time.sleep(0.01)
            for i in range(repeats):
                run_id = f"busy-cli-{i}"
                launched = time.time()
                command = [*_ductwork(), "trigger", "one", "--run-id", run_id]
                subprocess.run(command, env=env, check=True, capture_output=True)
                started, _ = finished(run_id)
                busy_row = "ductwork trigger, another try running: launch -> start"
                samples.setdefault(busy_row, []).append(ms(started, launched))
            run_service.cancel(engine, "busy", "busy")
        engine.dispose()
    return [(what, len(values), *_quantiles(values)) for what, values in samples.items()]


def _running(engine: object, flow_id: str) -> bool:
    from ductwork.store.engine import read_transaction
    from ductwork.store.repo import runs as run_repo
    from ductwork.store.repo import tasks as task_repo

    with read_transaction(engine) as conn:  # type: ignore[arg-type]
        record = run_repo.get_run(conn, flow_id, flow_id)
        return record is not None and any(t.state == "running" for t in task_repo.list_tries(conn, record.pk))


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def measure_listing(backend: str = "sqlite", files: int = 100) -> tuple[float, float, float]:
    """Seconds from a scheduler's launch on a folder of ``files`` flow files until the database
    lists every one of them; the scheduler's RSS then (MiB), and its RSS on an empty folder."""
    import engine as bench_engine
    from ductwork.store import migrate
    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import flows as flow_repo

    with bench_engine._folder() as tmp, bench_engine.database(backend, tmp) as url:
        flows = tmp / "flows"
        flows.mkdir()
        for i in range(files):
            (flows / f"listed_{i}.py").write_text(MANY.format(i=i))
        engine = create_engine(url)
        migrate.upgrade(engine)
        empty = tmp / "empty"
        empty.mkdir()
        scheduler = [*_ductwork(), "scheduler", "--workers", "1", "--log-level", "warning"]
        with _process(scheduler, _env(tmp, url, empty)) as p:
            time.sleep(5)  # settled: parsed nothing, polled a few times
            empty_rss = _rss_mib(p.pid)
        env = _env(tmp, url, flows)
        launched = time.monotonic()
        with _process(scheduler, env) as proc:
            deadline = launched + 120
            while time.monotonic() < deadline:
                with read_transaction(engine) as conn:
                    listed = len(flow_repo.list_flows(conn))
                if listed >= files:
                    elapsed = time.monotonic() - launched
                    break
                time.sleep(0.01)
            else:
                elapsed = float("nan")
            time.sleep(2)
            rss = _rss_mib(proc.pid)
        engine.dispose()
    return elapsed, rss, empty_rss


def print_rows(backend: str = "sqlite") -> None:
    print(f"| trigger ({backend})                                  | samples | median ms | p99 ms |")
    print("|---|---|---|---|")
    for what, count, median, p99 in measure_triggers(backend):
        print(f"| {what:<50} | {count:>7} | {median:>9.1f} | {p99:>6.1f} |", flush=True)
    listed, rss, empty_rss = measure_listing(backend)
    print(f"| {'scheduler start -> 100 flow files listed':<50} | {1:>7} | {listed * 1000:>9.1f} | {'':>6} |")
    per_flow = (rss - empty_rss) / 100 * 1024
    print(
        f"# scheduler RSS: {empty_rss:.1f} MiB on an empty folder, {rss:.1f} MiB with 100 idle flows "
        f"({per_flow:.0f} KiB per idle flow); warm worker RSS: {WORKER_RSS[-1] if WORKER_RSS else float('nan'):.1f} MiB"
    )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    print_rows(sys.argv[1] if len(sys.argv) > 1 else "sqlite")
