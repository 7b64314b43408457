"""The worker pool executor, with real processes and no mocks.

Flows from ``pool_flows/`` run through a ``Supervisor`` (or straight through the executor port)
in forkserver workers; results cross processes through a SQLite file, and the runtime's hooks
write a journal that the tests read.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pool_support import JournalRuntime, SlowToStartRetries, SqliteResults, read_journal, run_in_pool, try_log

from ductwork.core.class_flow import compile_tasks
from ductwork.core.config import ParamSources
from ductwork.core.context import RunInfo
from ductwork.core.graph import NodeSpec
from ductwork.core.states import TaskState
from ductwork.engine.executor import ExecutorEvent, FieldsRendered, TryFinished, TryKey, TryRequest, TryStarted
from ductwork.engine.executors.pool import PoolExecutor
from ductwork.loading import import_file

HERE = Path(__file__).parent
OPERATORS = HERE / "pool_flows" / "operators.py"
CLASS_TASKS = HERE / "pool_flows" / "class_tasks.py"
S = TaskState


# --- processes -----------------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None and fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stray_processes() -> set[int]:
    """Our descendants other than the long-lived helpers of this process: multiprocessing's
    (the forkserver and the resource tracker, which serve every pool of this process), and the
    guard of the commands it started (``core.subprocesses``: an earlier test ran a command)."""
    helpers = ("forkserver", "resource_tracker", "ductwork-command-guard")
    return {p for p in descendants(os.getpid()) if not any(k in cmdline(p) for k in helpers)}


def catches(pid: int, signum: int) -> bool:
    """Whether ``pid`` has a handler for ``signum`` (``SigCgt`` in /proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    return False


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# --- fixtures and helpers --------------------------------------------------------------------------
@pytest.fixture
def make_pool(tmp_path: Path) -> Iterator[Callable[..., PoolExecutor]]:
    """Pools with a journalling runtime and shared SQLite results; all shut down, and checked
    to have left no process behind, at the end of the test."""
    pools: list[PoolExecutor] = []

    SqliteResults(tmp_path / "results.db").create()

    def make(**options: Any) -> PoolExecutor:
        runtime = options.pop("runtime", None) or JournalRuntime(
            tmp_path / "journal.jsonl", results_factory=functools.partial(SqliteResults, tmp_path / "results.db")
        )
        options.setdefault("parallelism", 2)
        options.setdefault("kill_grace", 2.0)
        pool = PoolExecutor(runtime, **options)
        pool.start()
        pools.append(pool)
        return pool

    yield make
    pids = [pid for pool in pools for pid in pool.worker_pids()]
    for pool in pools:
        pool.shutdown(wait=False)
    assert wait_until(lambda: not any(alive(p) for p in pids), 10), "a worker outlived shutdown"
    assert wait_until(lambda: not stray_processes(), 10), f"processes left behind: {stray_processes()}"


def run_info(flow_id: str, **params: Any) -> RunInfo:
    now = dt.datetime.now(dt.UTC)
    return RunInfo(flow_id, f"run-{time.monotonic_ns()}", now, now, now, params=params)


def request(run: RunInfo, task_id: str, try_number: int = 1, **node: Any) -> TryRequest:
    return TryRequest(TryKey(run.key, task_id, try_number), NodeSpec(task_id, **node), run)


def collect(pool: PoolExecutor, until: Callable[[ExecutorEvent], bool], timeout: float = 30) -> list[ExecutorEvent]:
    """Events from ``wait``/``heartbeat`` up to and including the first one ``until`` accepts."""
    events: list[ExecutorEvent] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in pool.wait(0.5) + pool.heartbeat():
            events.append(event)
            if until(event):
                return events
    raise AssertionError(f"no such event within {timeout}s; got {events}")


def finished(key: TryKey) -> Callable[[ExecutorEvent], bool]:
    return lambda event: isinstance(event, TryFinished) and event.key == key


def journal(tmp_path: Path, event: str | None = None, task: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in read_journal(tmp_path / "journal.jsonl")
        if (event is None or e["event"] == event) and (task is None or e["task"] == task)
    ]


# --- flows through the supervisor ------------------------------------------------------------------
def test_flow_runs_in_workers_and_passes_results_between_processes(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    pool = make_pool()
    summary = run_in_pool(pool, OPERATORS, "pass_results")
    assert summary.state == "success", summary.tasks
    third = SqliteResults(tmp_path / "results.db").pull(summary.key, "third")
    assert third["value"] == 42
    assert third["pid"] != os.getpid() and third["pid"] in pool.worker_pids()
    recorded = {e["task"]: e["state"] for e in journal(tmp_path, "finished")}
    assert recorded == {"first": "success", "second": "success", "third": "success"}


COLLECTOR = """
import gc

from ductwork import Flow, PythonOperator


def report():
    return {"threshold": list(gc.get_threshold()), "frozen": gc.get_freeze_count()}


with Flow("collector") as flow:
    PythonOperator(task_id="report", python_callable=report)
"""


def test_workers_collect_garbage_less_often_and_keep_their_start_up_frozen(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    from ductwork.gc_tuning import OLDER, YOUNGEST

    (tmp_path / "collector.py").write_text(COLLECTOR)
    summary = run_in_pool(make_pool(), tmp_path / "collector.py", "collector")
    assert summary.state == "success", summary.tasks
    seen = SqliteResults(tmp_path / "results.db").pull(summary.key, "report")
    assert seen["threshold"] == [YOUNGEST, OLDER, OLDER]
    assert seen["frozen"] > 10_000  # the engine's modules, imported before the worker's first try


def test_decorated_flow_passes_values_between_workers(make_pool: Callable[..., PoolExecutor], tmp_path: Path) -> None:
    summary = run_in_pool(make_pool(), OPERATORS, "decorated")
    assert summary.state == "success"
    results = SqliteResults(tmp_path / "results.db")
    assert results.pull(summary.key, "stats", "total") == 12
    assert results.pull(summary.key, "mean") == 3.0


def test_failed_tries_are_retried_by_policy(make_pool: Callable[..., PoolExecutor]) -> None:
    summary = run_in_pool(make_pool(), OPERATORS, "retries")
    tries = summary["flaky"].tries
    assert [t.state for t in tries] == [S.UP_FOR_RETRY, S.UP_FOR_RETRY, S.SUCCESS]
    assert "failing on purpose in try 1" in (tries[0].error or "")
    assert summary.state == "success"


def test_class_tasks_with_dynamic_dependencies_and_config_from_the_run_sources(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    pool = make_pool(param_sources=ParamSources(cli={"Greeting": {"word": "bonjour"}}))
    summary = run_in_pool(pool, CLASS_TASKS, "class_total", params={"root": str(out)})
    assert summary.state == "success", {t: [(x.state, x.error) for x in s.tries] for t, s in summary.tasks.items()}
    lines = (out / "total.txt").read_text().splitlines()
    assert [line.split(" pid=")[0] for line in lines] == [
        "bonjour 0",
        "bonjour 1",
        "bonjour 2",
        "extra 0",
        "extra 1",
    ]
    assert all(int(line.split("pid=")[1]) != os.getpid() for line in lines)
    assert sum(1 for task_id in summary.tasks if task_id.startswith("Extra")) == 2


def test_try_log_holds_prints_logging_and_subprocess_output(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    summary = run_in_pool(make_pool(), OPERATORS, "noisy", log_dir=tmp_path / "logs")
    assert summary.state == "success"
    text = try_log(tmp_path / "logs", summary, "noisy")
    for expected in (
        "starting noisy, try 1 of 1",
        "printed by the task",
        "printed to stderr by the task",
        "WARNING user.code: logged by the task",
        "echoed by a subprocess",
        "subprocess stderr",
        "written straight to fd 1",
        "noisy succeeded",
    ):
        assert expected in text, f"{expected!r} missing from the log:\n{text}"
    assert text.index("printed by the task") < text.index("echoed by a subprocess") < text.index("written straight")


# --- liveness, timeouts, cancel ------------------------------------------------------------------
def test_worker_killed_mid_try_is_detected_and_the_try_retried(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    pool = make_pool()
    killed: dict[str, Any] = {}

    def kill_when_running() -> None:
        marker = tmp_path / "victim.pid"
        if wait_until(marker.exists, 30):
            killed["pid"] = int(marker.read_text())
            killed["at"] = dt.datetime.now(dt.UTC)
            os.kill(killed["pid"], signal.SIGKILL)

    killer = threading.Thread(target=kill_when_running)
    killer.start()
    summary = run_in_pool(pool, OPERATORS, "killed", params={"root": str(tmp_path)}, log_dir=tmp_path / "logs")
    killer.join()
    first, second = summary["victim"].tries
    assert first.state == S.UP_FOR_RETRY
    assert first.error == f"worker pid {killed['pid']} was killed by SIGKILL while running the try"
    assert first.ended_at is not None and (first.ended_at - killed["at"]).total_seconds() < 3
    assert second.state == S.SUCCESS and summary.state == "success"
    # What the dead worker had written is the try's log, with why it stopped (ADR 0018).
    log = try_log(tmp_path / "logs", summary, "victim", 1)
    assert "starting victim, try 1 of 2" in log and f"try stopped: {first.error}" in log
    assert not list((tmp_path / "logs").rglob(f"_staging.{killed['pid']}.log"))
    assert "succeeded" in try_log(tmp_path / "logs", summary, "victim", 2)
    assert killed["pid"] not in pool.worker_pids() and len(pool.worker_pids()) == 2


def test_short_tries_share_their_runs_log_file_and_a_long_one_has_its_own(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    pool = make_pool()
    short = run_in_pool(pool, OPERATORS, "pids", log_dir=tmp_path / "logs")
    (folder,) = [p.parent for p in (tmp_path / "logs").rglob("_tries.log")]
    names = [p.name for p in folder.iterdir()]  # the pack and the workers' staging files only
    assert all(n == "_tries.log" or (n.startswith("_staging.") and n.endswith(".log")) for n in names), names
    for i in range(4):
        log = try_log(tmp_path / "logs", short, f"pid_{i}")
        assert f"starting pid_{i}, try 1 of 1" in log and f"pid_{i} succeeded" in log
        assert log.count("starting") == 1, log
    long = run_in_pool(pool, OPERATORS, "slow", log_dir=tmp_path / "logs")
    (own,) = (tmp_path / "logs").rglob("nap.1.log")  # it ran past spill_after: a file of its own
    assert "nap succeeded" in own.read_text() and try_log(tmp_path / "logs", long, "nap") == own.read_text()


def test_execution_timeout_stops_the_worker_and_what_it_started(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    pool = make_pool()
    started = time.monotonic()
    summary = run_in_pool(pool, OPERATORS, "timeout", params={"root": str(tmp_path)}, log_dir=tmp_path / "logs")
    assert time.monotonic() - started < 20
    (attempt,) = summary["sleeper"].tries
    assert attempt.state == S.FAILED and attempt.error == "timed out after 1s"
    assert (tmp_path / "sleeper.on_kill").read_text() == "called"
    worker, child = int((tmp_path / "sleeper.pid").read_text()), int((tmp_path / "sleeper.child").read_text())
    assert wait_until(lambda: not alive(worker) and not alive(child), 5)
    assert "try stopped: timed out after 1s" in try_log(tmp_path / "logs", summary, "sleeper")
    assert len(pool.worker_pids()) == 2


def test_a_timed_out_command_that_ignores_sigterm_is_killed_with_its_children(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    """A BashOperator's command runs in a session of its own, out of reach of the SIGKILL the
    pool sends the worker's process group: the operator kills it after its grace period (within
    the pool's own, 5 s by default, while the worker still lives)."""
    pool = make_pool(kill_grace=5.0)
    summary = run_in_pool(pool, OPERATORS, "stubborn", params={"root": str(tmp_path)}, log_dir=tmp_path / "logs")
    (attempt,) = summary["stubborn"].tries
    assert attempt.state == S.FAILED and attempt.error == "timed out after 1s"
    pgid = int((tmp_path / "stubborn.pgid").read_text())

    def group_gone() -> bool:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        return False

    assert wait_until(group_gone, 15), f"the command's process group {pgid} outlived its try"


def test_cancel_stops_a_running_try(make_pool: Callable[..., PoolExecutor], tmp_path: Path) -> None:
    pool = make_pool(report_started_after=0.05, flow_files={"cancel": str(OPERATORS)})
    req = request(run_info("cancel", root=str(tmp_path)), "sleeper")
    pool.submit(req)
    collect(pool, lambda e: isinstance(e, TryStarted) and e.key == req.key)
    assert wait_until((tmp_path / "sleeper.pid").exists, 10)
    worker = int((tmp_path / "sleeper.pid").read_text())
    pool.cancel(req.key, "cancelled by the test")
    assert pool.free_slots() == 1  # the slot stays taken until the worker is gone
    event = collect(pool, finished(req.key))[-1]
    assert isinstance(event, TryFinished)
    assert event.outcome.state == S.FAILED and event.outcome.error == "cancelled by the test"
    assert not alive(worker) and (tmp_path / "sleeper.on_kill").exists()
    assert pool.free_slots() == 2 and worker not in pool.worker_pids()


def test_wake_ends_a_wait_while_a_try_runs(make_pool: Callable[..., PoolExecutor], tmp_path: Path) -> None:
    """A scheduler busy with a long try waits in the pool; ``ductwork trigger`` handed to it
    wakes it from another thread (``SchedulerService.wake``), and a wake that comes before the
    wait is not lost."""
    pool = make_pool(report_started_after=0.05, flow_files={"cancel": str(OPERATORS)})
    req = request(run_info("cancel", root=str(tmp_path)), "sleeper")
    pool.submit(req)
    collect(pool, lambda e: isinstance(e, TryStarted) and e.key == req.key)
    waker = threading.Timer(0.2, pool.wake)
    waker.start()
    began = time.monotonic()
    assert pool.wait(120) == []
    assert time.monotonic() - began < 60, "wake() did not end the wait"
    waker.join()
    pool.wake()
    began = time.monotonic()
    assert pool.wait(120) == []
    assert time.monotonic() - began < 60
    pool.cancel(req.key, "done")
    collect(pool, finished(req.key))


def test_long_try_is_reported_started_on_its_own_and_heartbeats(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    pool = make_pool(report_started_after=0.05, heartbeat_interval=0.3, flow_files={"slow": str(OPERATORS)})
    req = request(run_info("slow"), "nap")
    pool.submit(req)
    first = collect(pool, lambda e: True)
    assert [type(e) for e in first] == [TryStarted]
    rest = collect(pool, finished(req.key))
    assert isinstance(rest[-1], TryFinished) and rest[-1].outcome.state == S.SUCCESS
    assert not any(isinstance(e, TryStarted) for e in rest)
    assert len(journal(tmp_path, "heartbeat", "nap")) >= 2


def test_quick_try_reports_its_start_with_its_outcome(make_pool: Callable[..., PoolExecutor]) -> None:
    pool = make_pool(flow_files={"pass_results": str(OPERATORS)})
    req = request(run_info("pass_results"), "first")
    pool.submit(req)
    events = collect(pool, finished(req.key))
    # (a worker's first try may be reported started before its fields are rendered: they follow)
    assert [type(e) for e in events if not isinstance(e, FieldsRendered)] == [TryStarted, TryFinished]
    started = events[0]
    assert (
        isinstance(started, TryStarted) and started.pid in pool.worker_pids() and started.worker == socket.gethostname()
    )


def test_outcome_is_recorded_by_the_worker_before_it_is_reported(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    pool = make_pool(flow_files={"pass_results": str(OPERATORS)})
    req = request(run_info("pass_results"), "first")
    pool.submit(req)
    collect(pool, finished(req.key))
    assert [e["state"] for e in journal(tmp_path, "finished", "first")] == ["success"]


def test_refused_try_is_not_run(make_pool: Callable[..., PoolExecutor], tmp_path: Path) -> None:
    runtime = JournalRuntime(
        tmp_path / "journal.jsonl",
        results_factory=functools.partial(SqliteResults, tmp_path / "results.db"),
        refuse=("second",),
    )
    summary = run_in_pool(make_pool(runtime=runtime), OPERATORS, "pass_results")
    assert summary["second"].state == S.FAILED
    assert "refused" in (summary["second"].tries[0].error or "")
    assert summary["third"].state == S.UPSTREAM_FAILED
    assert journal(tmp_path, "refused", "second") and not journal(tmp_path, "finished", "second")


def test_unknown_task_fails_with_a_clear_error(make_pool: Callable[..., PoolExecutor]) -> None:
    pool = make_pool(flow_files={"pass_results": str(OPERATORS)})
    req = request(run_info("pass_results"), "nope")
    pool.submit(req)
    event = collect(pool, finished(req.key))[-1]
    assert isinstance(event, TryFinished) and event.outcome.state == S.FAILED
    assert "could not load task" in (event.outcome.error or "") and "'nope'" in (event.outcome.error or "")


def test_request_carries_flow_file_and_parameter_sources(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    """A scheduler sets both on the request; a class task node is rebuilt in the worker from
    its module and serialized parameters, and resolves its config from those sources."""
    module = import_file(CLASS_TASKS)
    nodes, _ = compile_tasks([module.Part(root=str(tmp_path), n=7)])
    (node,) = nodes.values()
    pool = make_pool()
    run = run_info("class_total", root=str(tmp_path))
    sources = ParamSources(env={"DUCTWORK_GREETING_WORD": "salut"})
    req = TryRequest(
        TryKey(run.key, node.task_id, 1), node, run, flow_file=str(CLASS_TASKS), param_sources=sources.to_dict()
    )
    pool.submit(req)
    event = collect(pool, finished(req.key))[-1]
    assert isinstance(event, TryFinished) and event.outcome.state == S.SUCCESS, event.outcome.error
    assert (tmp_path / "part-7.txt").read_text().startswith("salut 7 pid=")


def test_changed_flow_file_is_imported_again(make_pool: Callable[..., PoolExecutor], tmp_path: Path) -> None:
    flow_file = tmp_path / "changing.py"
    body = (
        "from ductwork import Flow, PythonOperator\n"
        'with Flow("changing") as f:\n'
        '    PythonOperator(task_id="t", python_callable=lambda: {value!r})\n'
    )
    flow_file.write_text(body.format(value="before"))
    pool = make_pool(parallelism=1)
    results = SqliteResults(tmp_path / "results.db")
    first = run_in_pool(pool, flow_file, "changing", run_id="one")
    assert results.pull(first.key, "t") == "before"
    time.sleep(1.1)  # a worker looks at a file's modification time at most once a second
    flow_file.write_text(body.format(value="after"))
    second = run_in_pool(pool, flow_file, "changing", run_id="two")
    assert results.pull(second.key, "t") == "after"


# --- process models ------------------------------------------------------------------------------
def test_fresh_mode_runs_every_try_in_a_new_process(make_pool: Callable[..., PoolExecutor], tmp_path: Path) -> None:
    pool = make_pool(mode="fresh")
    summary = run_in_pool(pool, OPERATORS, "pids")
    assert summary.state == "success"
    results = SqliteResults(tmp_path / "results.db")
    pids = [results.pull(summary.key, f"pid_{i}") for i in range(4)]
    assert len(set(pids)) == 4 and os.getpid() not in pids
    assert wait_until(lambda: not any(alive(p) for p in pids), 5)  # retired after one try each


def test_sigint_is_left_to_the_scheduler(make_pool: Callable[..., PoolExecutor], tmp_path: Path) -> None:
    """Ctrl-C reaches a terminal's foreground process group; workers have their own and
    ignore SIGINT anyway: the scheduler decides how they stop."""
    pool = make_pool(parallelism=1, flow_files={"pass_results": str(OPERATORS)})
    (worker,) = pool.worker_pids()
    assert wait_until(lambda: catches(worker, signal.SIGTERM), 10)  # its handlers are installed
    assert os.getpgid(worker) == worker
    os.kill(worker, signal.SIGINT)
    req = request(run_info("pass_results"), "first")
    pool.submit(req)
    event = collect(pool, finished(req.key))[-1]
    assert isinstance(event, TryFinished) and event.outcome.state == S.SUCCESS
    assert pool.worker_pids() == [worker]


def test_warm_workers_import_a_flow_once_and_run_many_tries(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    pool = make_pool(parallelism=1)
    summary = run_in_pool(pool, OPERATORS, "pids")
    results = SqliteResults(tmp_path / "results.db")
    assert {results.pull(summary.key, f"pid_{i}") for i in range(4)} == set(pool.worker_pids())


def test_shutdown_stops_running_tries_and_leaves_no_process(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    pool = make_pool(flow_files={"cancel": str(OPERATORS)}, kill_grace=1.0)
    pool.submit(request(run_info("cancel", root=str(tmp_path)), "sleeper"))
    assert wait_until((tmp_path / "sleeper.child").exists, 10)
    child = int((tmp_path / "sleeper.child").read_text())
    workers = pool.worker_pids()
    started = time.monotonic()
    pool.shutdown(wait=False)
    assert time.monotonic() - started < 5
    assert not any(alive(p) for p in workers)
    assert wait_until(lambda: not alive(child), 5)  # SIGKILLed with its worker's process group
    assert wait_until(lambda: not stray_processes(), 5), stray_processes()


def test_parent_death_contract(tmp_path: Path) -> None:
    """A parent killed with SIGKILL: its worker finishes and records the try it runs, starts
    no other (not even one already in its pipe) and exits; nothing is left running."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), *sys.path])}
    parent = subprocess.Popen([sys.executable, str(HERE / "pool_parent.py"), str(tmp_path)], env=env)
    try:
        assert wait_until(lambda: bool(journal(tmp_path, "started", "slow")), 60)
        family = descendants(parent.pid)
        worker = journal(tmp_path, "started", "slow")[0]["pid"]
        assert worker in family
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not any(alive(p) for p in family), 20), [cmdline(p) for p in family if alive(p)]
    finally:
        parent.kill()
        parent.wait()
    assert [(e["task"], e["state"], e["pid"]) for e in journal(tmp_path, "finished")] == [("slow", "success", worker)]
    assert (tmp_path / "slow.done").exists()
    assert not journal(tmp_path, "started", "second") and not (tmp_path / "second.ran").exists()


# --- prefetch: several tries in a worker's pipe ----------------------------------------------------
def ran(tmp_path: Path) -> list[tuple[str, int, float]]:
    """(task id, pid, monotonic time) of every execution, in the order they happened."""
    path = tmp_path / "ran.txt"
    lines = path.read_text().splitlines() if path.exists() else []
    rows = [(task, int(pid), float(at)) for task, pid, at in (line.split() for line in lines)]
    return sorted(rows, key=lambda row: row[2])


def test_prefetching_workers_run_every_try_once(make_pool: Callable[..., PoolExecutor], tmp_path: Path) -> None:
    pool = make_pool(prefetch=4, flow_files={"prefetch": str(OPERATORS)})
    assert pool.free_slots() == 2 * 4
    run = run_info("prefetch", root=str(tmp_path))
    requests = [request(run, f"quick_{i}") for i in range(12)]
    for req in requests:
        pool.submit(req)
    pending = {req.key for req in requests}

    def last_one_finished(event: ExecutorEvent) -> bool:
        # One wait() may return several tries' ends: count them all, stop at the last.
        if isinstance(event, TryFinished):
            pending.discard(event.key)
        return not pending

    events = collect(pool, last_one_finished)
    outcomes = {e.key.task_id: e.outcome.state for e in events if isinstance(e, TryFinished)}
    assert outcomes == {f"quick_{i}": S.SUCCESS for i in range(12)}
    assert sorted(task for task, _, _ in ran(tmp_path)) == sorted(f"quick_{i}" for i in range(12))
    assert {pid for _, pid, _ in ran(tmp_path)} <= set(pool.worker_pids())
    assert pool.free_slots() == 2 * 4


def test_a_long_try_gives_back_the_tries_queued_behind_it(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    """Tries sent to a worker behind a try that turns out long run in the other worker at once,
    not after the long one."""
    pool = make_pool(prefetch=6, report_started_after=0.05, flow_files={"prefetch": str(OPERATORS)})
    run = run_info("prefetch", root=str(tmp_path), nap=3.0)
    long = request(run, "long")
    quick = [request(run, f"quick_{i}") for i in range(10)]
    for req in [long, *quick]:
        pool.submit(req)  # several quick tries land in the long try's worker too
    events = collect(pool, finished(long.key), timeout=60)
    done = [e.key.task_id for e in events if isinstance(e, TryFinished)]
    assert done[-1] == "long" and sorted(done[:-1]) == sorted(r.key.task_id for r in quick)
    executions = ran(tmp_path)
    long_pid = next(pid for task, pid, _ in executions if task == "long")
    assert [task for task, pid, _ in executions if pid == long_pid] == ["long"]
    assert sorted(task for task, _, _ in executions) == sorted(["long", *(f"quick_{i}" for i in range(10))])


def test_cancelling_a_try_queued_in_a_worker_never_starts_it(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    pool = make_pool(parallelism=1, prefetch=4, report_started_after=30, flow_files={"prefetch": str(OPERATORS)})
    run = run_info("prefetch", root=str(tmp_path), nap=1.5)
    long, queued, after = request(run, "long"), request(run, "quick_0"), request(run, "quick_1")
    for req in (long, queued, after):
        pool.submit(req)
    assert wait_until(lambda: bool(ran(tmp_path)), 10)  # the long try runs; the others wait behind it
    pool.cancel(queued.key, "cancelled by the test")
    events = collect(pool, finished(after.key), timeout=30)
    outcomes = {e.key.task_id: e.outcome for e in events if isinstance(e, TryFinished)}
    assert outcomes["quick_0"].state == S.FAILED and outcomes["quick_0"].error == "cancelled by the test"
    assert outcomes["long"].state == S.SUCCESS and outcomes["quick_1"].state == S.SUCCESS
    assert [task for task, _, _ in ran(tmp_path)] == ["long", "quick_1"]
    assert not journal(tmp_path, "started", "quick_0")


def test_tries_queued_in_a_killed_worker_run_elsewhere_once(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    pool = make_pool(parallelism=1, prefetch=4, report_started_after=30, flow_files={"prefetch": str(OPERATORS)})
    run = run_info("prefetch", root=str(tmp_path), nap=30)
    long = request(run, "long")
    queued = [request(run, f"quick_{i}") for i in range(3)]
    for req in [long, *queued]:
        pool.submit(req)
    assert wait_until(lambda: bool(ran(tmp_path)), 10)
    (victim,) = pool.worker_pids()
    os.kill(victim, signal.SIGKILL)
    events = collect(pool, finished(queued[-1].key), timeout=30)
    outcomes = {e.key.task_id: e.outcome for e in events if isinstance(e, TryFinished)}
    assert outcomes["long"].state == S.UP_FOR_RETRY or outcomes["long"].state == S.FAILED
    assert "was killed by SIGKILL" in (outcomes["long"].error or "")
    assert all(outcomes[r.key.task_id].state == S.SUCCESS for r in queued)
    executions = ran(tmp_path)
    assert [task for task, _, _ in executions] == ["long", "quick_0", "quick_1", "quick_2"]
    assert all(pid != victim for task, pid, _ in executions if task != "long")


def test_a_timeout_counts_from_when_a_queued_try_starts(make_pool: Callable[..., PoolExecutor], tmp_path: Path) -> None:
    """A try waiting in a worker's queue behind a 1.5 s try does not use up its own 1 s timeout."""
    pool = make_pool(parallelism=1, prefetch=4, report_started_after=30, flow_files={"prefetch": str(OPERATORS)})
    run = run_info("prefetch", root=str(tmp_path), nap=1.5)
    long = request(run, "long")
    quick = TryRequest(TryKey(run.key, "quick_0", 1), NodeSpec("quick_0", execution_timeout=1.0), run)
    pool.submit(long)
    pool.submit(quick)
    events = collect(pool, finished(quick.key), timeout=30)
    outcomes = {e.key.task_id: e.outcome for e in events if isinstance(e, TryFinished)}
    assert outcomes["long"].state == S.SUCCESS and outcomes["quick_0"].state == S.SUCCESS


def test_a_retry_after_a_timeout_gets_its_whole_timeout_on_the_worker_started_in_place(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    """The worker stopped at a timeout is replaced by a new process; the retry sent to it is
    timed from its start on that worker, not from the moment it was sent (the new worker's
    start-up used to eat the retry's timeout: it ran for a fraction of it, or not at all)."""
    runtime = SlowToStartRetries(
        tmp_path / "journal.jsonl", results_factory=functools.partial(SqliteResults, tmp_path / "results.db")
    )
    pool = make_pool(parallelism=1, runtime=runtime, flow_files={"prefetch": str(OPERATORS)})
    run = run_info("prefetch", root=str(tmp_path), nap=5)
    for number in (1, 2):
        attempt = request(run, "long", number, execution_timeout=1.0)
        pool.submit(attempt)
        events = collect(pool, finished(attempt.key), timeout=30)
        (outcome,) = [e.outcome for e in events if isinstance(e, TryFinished)]
        assert outcome.error == "timed out after 1s"
        assert outcome.duration >= 0.95, f"try {number} ran {outcome.duration:.2f}s of its 1s"
    assert [task for task, _, _ in ran(tmp_path)] == ["long", "long"]  # the retry did start


HELPED = """
from pathlib import Path
from h1 import factor
from ductwork import Flow, PythonOperator

def write():
    Path(__file__).with_name("out.txt").write_text(str(factor()))

with Flow("helped") as helped:
    PythonOperator(task_id="t", python_callable=write)
"""


def test_a_warm_worker_runs_the_helper_modules_as_edited(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    """A flow file's helper module, and the module that helper imports, edited between two runs:
    the same warm worker runs the new code (it ran the helpers it had imported first)."""
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "helped.py").write_text(HELPED)
    (folder / "h1.py").write_text("import h2\n\ndef factor():\n    return h2.base() + 2\n")
    (folder / "h2.py").write_text("def base():\n    return 200\n")
    pool = make_pool(parallelism=1)
    seen = []
    for edit in (None, ("h1.py", "+ 2", "+ 5"), ("h2.py", "200", "300")):
        if edit is not None:
            path = folder / edit[0]
            path.write_text(path.read_text().replace(edit[1], edit[2]))
        summary = run_in_pool(pool, folder / "helped.py", "helped")
        assert summary.task_states["t"] == S.SUCCESS
        seen.append((folder / "out.txt").read_text())
    assert seen == ["202", "205", "305"]
    assert len(pool.worker_pids()) == 1  # one warm worker ran all three


EDITED = """
import time
from pathlib import Path
from ductwork import Flow, PythonOperator

def edit():
    here = Path(__file__)
    here.write_text(here.read_text().split("#" + " --- b")[0] + "# b removed\\n")
    time.sleep(1.2)  # past the workers' look at the file within one run

with Flow("edited") as edited:
    a = PythonOperator(task_id="a", python_callable=edit)
# --- b
    a >> PythonOperator(task_id="b", python_callable=lambda: None, retries=2, retry_delay=0)
"""


def test_a_task_removed_from_its_file_during_the_run_fails_once_without_retries(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    """Another try of a task the file no longer defines cannot help: it fails at once, saying
    why, instead of using up its retries on the same load error."""
    file = tmp_path / "edited_flow.py"
    file.write_text(EDITED)
    summary = run_in_pool(make_pool(), file, "edited", log_dir=tmp_path / "logs")
    assert summary.task_states["a"] == S.SUCCESS
    (attempt,) = summary["b"].tries
    assert attempt.state == S.FAILED
    assert "no task 'b'" in (attempt.error or "") and "removed from" in (attempt.error or "")


POLLUTERS = """
import os
import resource

from ductwork import Flow, PythonOperator


def pollute():
    os.environ["POLLUTED"] = "yes"
    os.chdir("/")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 64), hard))


def look():
    return {
        "env": os.environ.get("POLLUTED"),
        "cwd": os.getcwd(),
        "files": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


with Flow("polluters") as flow:
    PythonOperator(task_id="pollute", python_callable=pollute) >> PythonOperator(task_id="look", python_callable=look)
"""


def test_a_try_does_not_leave_its_environment_folder_or_limits_to_the_next_in_its_worker(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    """One warm worker runs both tries: the second saw the first's variable, folder and limit."""
    (tmp_path / "polluters.py").write_text(POLLUTERS)
    summary = run_in_pool(make_pool(parallelism=1), tmp_path / "polluters.py", "polluters")
    assert summary.state == "success", summary.tasks
    seen = SqliteResults(tmp_path / "results.db").pull(summary.key, "look")
    assert seen["env"] is None
    assert seen["cwd"] != "/"
    assert seen["files"] > 64


FORKER = """
import os
import time

from ductwork import Flow, PythonOperator


def forker():
    child = os.fork()
    if child == 0:
        return "child"  # the child comes back from the task's code, as a careless task's would
    time.sleep(0.3)
    os.waitpid(child, 0)
    return "parent"


def after():
    return os.getpid()


with Flow("forker") as flow:
    first = PythonOperator(task_id="forker", python_callable=forker)
    for i in range(6):
        first >> PythonOperator(task_id=f"w{i}", python_callable=after)
"""


def test_a_forked_child_that_returns_from_a_task_does_not_become_a_second_worker(
    make_pool: Callable[..., PoolExecutor], tmp_path: Path
) -> None:
    """It took tries from the worker's pipe: some ran in it, the others waited for ever."""
    (tmp_path / "forker.py").write_text(FORKER)
    pool = make_pool(parallelism=1)
    summary = run_in_pool(pool, tmp_path / "forker.py", "forker")
    assert summary.state == "success", summary.tasks
    results = SqliteResults(tmp_path / "results.db")
    assert results.pull(summary.key, "forker") == "parent"
    assert {results.pull(summary.key, f"w{i}") for i in range(6)} <= set(pool.worker_pids())


SLOW_TO_LOAD = """
import time
from ductwork import Flow, PythonOperator

time.sleep(1.0)  # an import that takes its time (a big library, a busy machine)

with Flow("slow_to_load", schedule=None) as flow:
    PythonOperator(task_id="quick", python_callable=lambda: 1)
"""


def test_a_trys_duration_runs_from_its_recorded_start(make_pool: Callable[..., PoolExecutor], tmp_path: Path) -> None:
    """A try's start was recorded when its worker took it, its duration counted from the task's
    own start, after the flow file was imported: the tries table said 0.02 s for a try whose
    start and end, drawn by the Gantt chart, were a second and more apart."""
    flow_file = tmp_path / "slow_to_load.py"
    flow_file.write_text(SLOW_TO_LOAD)
    pool = make_pool(flow_files={"slow_to_load": str(flow_file)})
    req = request(run_info("slow_to_load"), "quick")
    pool.submit(req)
    events = collect(pool, finished(req.key))
    (started,) = [e for e in events if isinstance(e, TryStarted)]
    outcome = events[-1].outcome  # type: ignore[union-attr]
    assert outcome.state == S.SUCCESS
    assert outcome.started_at == started.at and outcome.duration >= 1.0, (started.at, outcome)
