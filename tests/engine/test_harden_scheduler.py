"""Issue 9, the scheduler's half: bad flows, odd schedules, pools and what a try records, through
one real scheduler (worker pool, SQLite) shared by the module. Tests that need a bad file write
it into the flows folder themselves and remove it at the end, so each shows its own defect."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import socket
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from ductwork.cli.main import cli
from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.records import ImportErrorRecord
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import import_errors as error_repo
from ductwork.store.repo import pools as pool_repo
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from faultfs import small_disk

COMMON = """
import os, time
from pathlib import Path

MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])

def stamp(run_id, task_id, try_number, seconds=0.0):
    start = time.time()
    time.sleep(seconds)
    name = f"{run_id}.{task_id}.{try_number}".replace("/", "_")
    (MARKS / name).write_text(f"{start} {time.time()}")
"""

FLOWS = {
    "_common.py": COMMON,
    "basic.py": """
        import datetime as dt
        from ductwork import BaseSensorOperator, BashOperator, Flow, PythonOperator
        from _common import MARKS, stamp

        with Flow("quick", schedule=None) as quick:
            PythonOperator(task_id="one", python_callable=lambda ti: stamp(ti.run_id, "one", ti.try_number))

        with Flow("pooled", schedule=None) as pooled:
            for i in range(3):
                PythonOperator(task_id=f"p{i}", pool="narrow", op_args=[f"p{i}"],
                               python_callable=lambda name, ti: stamp(ti.run_id, name, ti.try_number, 1.0))

        with Flow("slow", schedule=None) as slow:
            BashOperator(task_id="sleepy", bash_command="sleep 30", execution_timeout=1, retries=0)

        with Flow("long", schedule=None) as long:
            BashOperator(task_id="nap", bash_command="sleep 20")

        class MarkerSensor(BaseSensorOperator):
            def poke(self, context):
                return (MARKS / "sensor-go").exists()

        with Flow("sensing", schedule=None) as sensing:
            MarkerSensor(task_id="wait", mode="reschedule", poke_interval=0.2, timeout=120)

        with Flow("limited", schedule=None, max_active_runs=1) as limited:
            PythonOperator(task_id="work", python_callable=lambda ti: stamp(ti.run_id, "work", ti.try_number, 0.6))

        with Flow("six_hourly", schedule=dt.timedelta(hours=6), start_date="2024-01-01", catchup=False) as six_hourly:
            PythonOperator(task_id="tick", python_callable=lambda: None)
    """,
}


class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.flows = tmp / "flows"
        self.marks = tmp / "marks"
        self.url = f"sqlite:///{tmp / 'ductwork.db'}"
        self.vars = {
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(self.flows),
            "DUCTWORK_DATABASE_URL": self.url,
            "DUCTWORK_TEST_MARKS": str(self.marks),
        }
        self.engine = create_engine(self.url)
        self.service: SchedulerService | None = None
        self.thread: threading.Thread | None = None

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.vars, catch_exceptions=False)

    def json(self, *args: str, exit_codes: tuple[int, ...] = (0,)) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code in exit_codes, result.output
        return json.loads(result.output)

    def write_flow(self, name: str, source: str) -> Path:
        path = self.flows / name
        path.write_text(textwrap.dedent(source))
        return path

    def import_errors(self) -> dict[str, ImportErrorRecord]:
        with read_transaction(self.engine) as conn:
            return {Path(e.fileloc).name: e for e in error_repo.list_import_errors(conn)}

    def flow_ids(self) -> set[str]:
        with read_transaction(self.engine) as conn:
            return {f.flow_id for f in flow_repo.list_flows(conn) if f.is_active}

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def instances(self, flow_id: str, run_id: str) -> dict[str, Any]:
        with read_transaction(self.engine) as conn:
            run = run_repo.get_run(conn, flow_id, run_id)
            assert run is not None
            return {t.task_id: t for t in task_repo.list_task_instances(conn, run.pk)}


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(tmp_path_factory.mktemp("harden"))
    e.flows.mkdir()
    e.marks.mkdir()
    for name, source in FLOWS.items():
        e.write_flow(name, source)
    old = {k: os.environ.get(k) for k in e.vars}
    os.environ.update(e.vars)  # the scheduler's workers and parsing processes inherit these
    migrate.upgrade(e.engine)
    with transaction(e.engine) as conn:
        pool_repo.put_pool(conn, "narrow", 1)
    settings = Settings(home=e.tmp / "home", flows_folder=e.flows, database_url=e.url, parallelism=3)
    options = SchedulerOptions(poll_interval=0.2, parse_interval=0.3, parse_timeout=8, parse_slow_after=1.0)
    e.service = SchedulerService(settings, options=options)
    e.thread = threading.Thread(target=e.service.run, daemon=True)
    e.thread.start()
    wait_for(lambda: {"quick", "pooled", "six_hourly"} <= e.flow_ids(), 60, "the flows to be parsed")
    try:
        yield e
    finally:
        e.service.stop()
        e.thread.join(timeout=60)
        e.engine.dispose()
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _trigger_and_wait(env: Env, flow_id: str, timeout: float = 60) -> dict[str, Any]:
    return env.json("trigger", flow_id, "--wait", "--timeout", str(timeout), exit_codes=(0, 1))


# --- item 1 ------------------------------------------------------------------------------------
def test_a_cron_that_never_fires_is_an_import_error_and_the_scheduler_goes_on(env: Env) -> None:
    path = env.write_flow(
        "never.py",
        """
        from ductwork import Flow, PythonOperator

        with Flow("never", schedule="0 0 31 2 *", start_date="2024-01-01") as never:
            PythonOperator(task_id="t", python_callable=lambda: None)
        """,
    )
    try:
        error = wait_for(lambda: env.import_errors().get("never.py"), 30, "an import error for never.py")
        assert error.line == 4  # the line of the Flow(...) with the bad schedule
        assert "flow 'never'" in error.error and "'0 0 31 2 *'" in error.error and "never run" in error.error
        assert "never" not in env.flow_ids()
        time.sleep(1.0)  # several polls, each of which looks for due runs
        assert env.alive(), "the scheduler stopped"
        assert _trigger_and_wait(env, "quick")["state"] == "success"
    finally:
        path.unlink()


# --- item 16 -----------------------------------------------------------------------------------
def test_a_timedelta_schedule_is_stored_readably_and_scheduled(env: Env) -> None:
    with read_transaction(env.engine) as conn:
        flow = flow_repo.get_flow(conn, "six_hourly")
    assert flow is not None and flow.schedule == "6h"

    def scheduled() -> list[Any]:
        with read_transaction(env.engine) as conn:
            return run_repo.list_runs(conn, flow_id="six_hourly", run_types=["scheduled"]).items

    runs = wait_for(scheduled, 30, "a scheduled run of six_hourly")
    assert runs[0].data_interval_end - runs[0].data_interval_start == dt.timedelta(hours=6)
    assert env.alive()


# --- item 21 (engine half) -----------------------------------------------------------------------
def _overlap(env: Env, run_id: str, tasks: list[str]) -> int:
    """The most tasks of ``run_id`` that ran at the same moment, from the times they wrote."""
    spans = []
    for task in tasks:
        start, end = map(float, (env.marks / f"{run_id}.{task}.1").read_text().split())
        spans.append((start, end))
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def test_a_new_pool_size_applies_without_a_restart(env: Env) -> None:
    tasks = ["p0", "p1", "p2"]
    first = _trigger_and_wait(env, "pooled")
    assert first["state"] == "success" and _overlap(env, first["run_id"], tasks) == 1
    assert env.cli("pools", "set", "narrow", "3").exit_code == 0
    time.sleep(1.0)  # a few polls
    second = _trigger_and_wait(env, "pooled")
    assert second["state"] == "success"
    assert _overlap(env, second["run_id"], tasks) >= 2, "the pool still had one slot"


# --- item 22 (engine half) -----------------------------------------------------------------------
def test_a_timed_out_try_records_how_long_it_ran(env: Env) -> None:
    run = _trigger_and_wait(env, "slow")
    assert run["state"] == "failed"
    sleepy = env.instances("slow", run["run_id"])["sleepy"]
    assert sleepy.duration is not None and sleepy.duration >= 0.9, sleepy


def test_a_rescheduled_sensor_keeps_a_sane_try_number(env: Env) -> None:
    run = env.json("trigger", "sensing")
    seen: list[int] = []

    def rescheduled() -> bool:
        state = env.json("tasks", "state", "sensing", run["run_id"], "wait")["wait"]
        seen.append(state["try_number"])
        return state["state"] == "up_for_reschedule"

    wait_for(rescheduled, 30, "the sensor to be rescheduled")
    shown = env.cli("tasks", "state", "sensing", run["run_id"], "wait").output
    assert "up_for_reschedule (try 1" in shown, shown  # the try that checks next (it said 'try 0')
    (env.marks / "sensor-go").write_text("go")
    wait_for(
        lambda: env.json("runs", "show", "sensing", run["run_id"])["state"] == "success", 30, "the sensor to succeed"
    )
    assert min(seen) >= 0
    assert env.json("tasks", "state", "sensing", run["run_id"], "wait")["wait"]["try_number"] == 1


def test_tasks_state_says_when_a_task_up_for_retry_runs_again(env: Env) -> None:
    """`tasks state` and `runs show --json` said `up_for_retry` and nothing of when the retry
    is due (in a second or in an hour); they give its ``next_try_at``, as the API does."""
    env.write_flow(
        "later.py",
        """
        from ductwork import Flow, PythonOperator

        def breaks():
            raise RuntimeError("not yet")

        with Flow("later_retry") as f:
            PythonOperator(task_id="later", python_callable=breaks, retries=1, retry_delay=600)
        """,
    )
    wait_for(lambda: "later_retry" in env.flow_ids(), 30, "the flow to be parsed")
    run = env.json("trigger", "later_retry")
    try:
        state = wait_for(
            lambda: (
                (s := env.json("tasks", "state", "later_retry", run["run_id"])["later"])["state"] == "up_for_retry"
                and s
            ),
            30,
            "the task to be up for retry",
        )
        due = dt.datetime.fromisoformat(state["next_try_at"])
        assert dt.timedelta(seconds=500) < due - dt.datetime.now(dt.UTC) <= dt.timedelta(seconds=600)
        assert env.json("runs", "show", "later_retry", run["run_id"])["tasks"]["later"] == state
        text = env.cli("tasks", "state", "later_retry", run["run_id"], "later").output
        assert f"later: up_for_retry (try 1, next try at {state['next_try_at']})" in " ".join(text.split())
        assert (
            "next_try_at" not in env.json("tasks", "state", "quick", _trigger_and_wait(env, "quick")["run_id"])["one"]
        )
    finally:
        env.cli("runs", "cancel", "later_retry", run["run_id"])


def test_tries_record_their_worker_host_and_pid(env: Env) -> None:
    run = _trigger_and_wait(env, "quick")
    one = env.instances("quick", run["run_id"])["one"]
    assert one.hostname == socket.gethostname()
    assert isinstance(one.pid, int) and one.pid > 0 and one.pid != os.getpid()


# --- item 4 ------------------------------------------------------------------------------------
def test_a_full_disk_under_the_logs_charges_no_task_and_says_so(env: Env) -> None:
    assert env.service is not None
    with small_disk(env.tmp / "home" / "logs") as disk:
        disk.fill()
        run = env.json("trigger", "quick")  # its task has no retries: one charged try fails it
        time.sleep(2.5)
        assert env.json("runs", "show", "quick", run["run_id"])["state"] == "running"
        assert env.json("tasks", "state", "quick", run["run_id"], "one")["one"]["state"] == "queued"
        fault = env.service.status().platform_fault
        assert fault is not None and "No space left on device (ENOSPC)" in fault and "log file" in fault
        disk.free()
        wait_for(
            lambda: env.json("runs", "show", "quick", run["run_id"])["state"] == "success", 30, "the run to succeed"
        )
        assert env.json("tasks", "state", "quick", run["run_id"], "one")["one"]["try_number"] == 1
        assert [p.name for p in env.marks.glob(f"{run['run_id']}.one.*")] == [f"{run['run_id']}.one.1"]
    assert env.service.status().platform_fault is None


# --- item 6 ------------------------------------------------------------------------------------
def test_max_active_runs_holds_for_manual_triggers_and_backfills(env: Env) -> None:
    runs = [env.json("trigger", "limited", "--date", f"2024-02-0{d}") for d in (1, 2, 3)]
    runs += env.json("backfill", "limited", "--start", "2024-03-01", "--end", "2024-03-02")
    most = 0

    def all_done() -> bool:
        nonlocal most
        listed = env.json("runs", "list", "limited", "--limit", "50")["runs"]
        most = max(most, sum(1 for r in listed if r["state"] == "running"))
        return len(listed) >= 5 and all(r["state"] == "success" for r in listed)

    wait_for(all_done, 60, "every run of the limited flow to succeed")
    assert most <= 1, f"{most} runs of a flow with max_active_runs=1 were running at once"
    spans = sorted(tuple(map(float, (env.marks / f"{r['run_id']}.work.1").read_text().split())) for r in runs)
    assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(spans)), spans


# --- item 19 -----------------------------------------------------------------------------------
SHARED = """
    import datetime as dt, os, time, uuid
    from ductwork import DateParameter, Flow, LocalTarget, Task
    from _common import MARKS

    class Shared(Task):
        \"\"\"Needed by every day's report: one task id, whichever run needs it.\"\"\"

        def output(self):
            return LocalTarget(str(MARKS / "shared.out"))

        def run(self):
            time.sleep(1.0)
            os.close(os.open(MARKS / f"shared-ran.{uuid.uuid4().hex}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            with self.output().open("w") as out:
                out.write("done")

    class DayReport(Task):
        day = DateParameter()

        def requires(self):
            return Shared()

        def output(self):
            return LocalTarget(str(MARKS / f"report-{self.day}.out"))

        def run(self):
            with self.output().open("w") as out:
                out.write("report")

    start = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    reports = Flow.from_task(DayReport, flow_id="reports", schedule="@daily", start_date=start, catchup=True,
                             date_param="day")
"""


def test_a_class_task_needed_by_runs_created_together_runs_once(env: Env) -> None:
    path = env.write_flow("shared.py", SHARED)
    try:

        def runs() -> list[dict[str, Any]]:
            return env.json("runs", "list", "reports", "--limit", "50")["runs"]

        done = wait_for(
            lambda: (lambda r: r if len(r) >= 3 and all(x["state"] == "success" for x in r) else None)(runs()),
            90,
            "three successful runs of reports",
        )
        assert len(done) == 3
        assert len(list(env.marks.glob("shared-ran.*"))) == 1, "Shared ran more than once"
        assert len(list(env.marks.glob("report-*.out"))) == 3
        said = [env.json("why", "reports", "Shared", r["run_id"])["text"] for r in done]
        assert sum("took its success" in t for t in said) == 2, said  # it said "runs ... output missing"

        # A run created after that completion compiled Shared into its graph because its output
        # was gone then: it runs (as Luigi checks complete() at each invocation).
        (env.marks / "shared.out").unlink()
        (env.marks / f"report-{done[0]['logical_date'][:10]}.out").unlink()
        assert env.cli("trigger", "reports", "--date", done[0]["logical_date"], "--run-id", "again").exit_code == 0
        wait_for(lambda: env.instances("reports", "again") and _all_ended(env, "again"), 60, "the new run to end")
        assert len(list(env.marks.glob("shared-ran.*"))) == 2, env.instances("reports", "again")

        # Cleared in a run created before that completion: it runs again too.
        shared = next(t for t in env.instances("reports", "again") if t.startswith("Shared"))
        old_run = done[-1]["run_id"]
        assert env.cli("tasks", "clear", "reports", old_run, shared).exit_code == 0
        wait_for(lambda: len(list(env.marks.glob("shared-ran.*"))) == 3, 60, "the cleared Shared to run again")
    finally:
        path.unlink()


def _all_ended(env: Env, run_id: str) -> bool:
    states = {t.state.value for t in env.instances("reports", run_id).values()}
    return states <= {"success", "failed", "skipped", "upstream_failed"}


# --- item 3 ------------------------------------------------------------------------------------
HANGS = """
    import os, subprocess, time
    from pathlib import Path

    child = subprocess.Popen(["sleep", "600"])
    (Path(os.environ["DUCTWORK_TEST_MARKS"]) / "NAME.pid").write_text(str(child.pid))
    time.sleep(3600)
"""


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_files_that_hang_at_import_block_neither_scheduling_nor_other_files(env: Env) -> None:
    hangs = [f"hang{i}" for i in range(3)]
    paths = [env.write_flow(f"{name}.py", HANGS.replace("NAME", name)) for name in hangs]
    paths.append(
        env.write_flow(
            "zz_fresh.py",  # sorted after the hanging files: it waits behind them in the queue
            """
            from ductwork import EmptyOperator, Flow

            with Flow("fresh", schedule=None) as fresh:
                EmptyOperator(task_id="t")
            """,
        )
    )
    try:
        wait_for(lambda: all((env.marks / f"{n}.pid").exists() for n in hangs), 30, "the hanging files to start")
        wait_for(lambda: "fresh" in env.flow_ids(), 30, "zz_fresh.py to be parsed")
        assert _trigger_and_wait(env, "quick")["state"] == "success"
        assert not set(env.import_errors()) & {f"{n}.py" for n in hangs}, "the hanging parses ended already"

        def hang_errors() -> list[ImportErrorRecord] | None:
            errors = env.import_errors()
            found = [errors.get(f"{n}.py") for n in hangs]
            return [e for e in found if e is not None] if all(found) else None

        errors = wait_for(hang_errors, 60, "the hanging files' import errors")
        assert all("took longer than 8s" in e.error for e in errors), errors
        # parsed side by side: together they cost about one timeout, not three
        moments = sorted(e.at for e in errors)
        assert (moments[-1] - moments[0]).total_seconds() < 4, moments
        for name in hangs:
            pid = int((env.marks / f"{name}.pid").read_text())
            wait_for(lambda pid=pid: _gone(pid), 10, f"the process {name}.py started to be killed")
        assert env.alive()
    finally:
        for path in paths:
            path.unlink()


# --- item 7 ------------------------------------------------------------------------------------
TWIN = """
    from ductwork import EmptyOperator, Flow

    with Flow("twin", schedule=None) as twin:
        EmptyOperator(task_id="TASK")
"""


def test_a_flow_id_defined_in_two_files_is_an_import_error_of_both(env: Env) -> None:
    first = env.write_flow("twin_a.py", TWIN.replace("TASK", "a"))
    second = env.write_flow("twin_b.py", TWIN.replace("TASK", "b"))

    def twin() -> Any:
        with read_transaction(env.engine) as conn:
            return flow_repo.get_flow_graph(conn, "twin")

    try:

        def both() -> tuple[ImportErrorRecord, ImportErrorRecord] | None:
            errors = env.import_errors()
            return (errors["twin_a.py"], errors["twin_b.py"]) if {"twin_a.py", "twin_b.py"} <= set(errors) else None

        on_a, on_b = wait_for(both, 30, "import errors on both twin files")
        assert str(second) in on_a.error and str(first) in on_b.error
        assert all("flow id 'twin'" in e.error and e.line == 4 for e in (on_a, on_b))
        # Neither copy is taken while both exist: the flow is unknown, or as it was when only
        # one of the files had been parsed. Remove that one: the other one's copy is taken.
        graph = twin()
        assert graph is None or list(graph.nodes) in (["a"], ["b"])
        gone, left, task = (
            (second, first, "a") if graph is not None and list(graph.nodes) == ["b"] else (first, second, "b")
        )
        gone.unlink()
        wait_for(lambda: (g := twin()) is not None and list(g.nodes) == [task], 30, "twin from the file left")
        assert left.name not in env.import_errors()
    finally:
        first.unlink(missing_ok=True)
        second.unlink(missing_ok=True)


# --- item 20 -----------------------------------------------------------------------------------
MEMORY = """
    from ductwork import Flow, MemoryTarget, Task

    class Produce(Task):
        def output(self):
            return MemoryTarget("produced")

        def run(self):
            with self.output().open("w") as out:
                out.write("data")

    class Consume(Task):
        def requires(self):
            return Produce()

        def output(self):
            return MemoryTarget("consumed")

        def run(self):
            with self.input().open() as src, self.output().open("w") as out:
                out.write(src.read())

    memory = Flow.from_task(Consume, flow_id="memory", schedule=None)
"""


def test_memory_targets_are_refused_under_the_scheduler_with_a_reason(env: Env) -> None:
    path = env.write_flow("memory.py", MEMORY)
    try:
        wait_for(lambda: "memory" in env.flow_ids(), 30, "memory.py to be parsed")
        run = _trigger_and_wait(env, "memory")
        assert run["state"] == "failed"
        note = run["note"] or ""
        assert "MemoryTarget('" in note and "worker process of its own" in note and "LocalTarget" in note, note
    finally:
        path.unlink()


# --- found on the way: a mark while the task runs ------------------------------------------------
def test_a_task_marked_failed_while_it_runs_stays_failed_and_is_stopped(env: Env) -> None:
    run = env.json("trigger", "long")
    wait_for(
        lambda: env.json("tasks", "state", "long", run["run_id"], "nap")["nap"]["state"] == "running",
        30,
        "the task to run",
    )
    assert env.cli("tasks", "mark", "long", run["run_id"], "nap", "--state", "failed").exit_code == 0
    wait_for(lambda: env.json("runs", "show", "long", run["run_id"])["state"] == "failed", 15, "the run to end")
    time.sleep(1.0)
    assert env.json("tasks", "state", "long", run["run_id"], "nap")["nap"]["state"] == "failed"


def test_a_task_cleared_while_it_runs_is_stopped_and_runs_again_as_a_new_try(env: Env) -> None:
    run = env.json("trigger", "long")
    state = lambda: env.json("tasks", "state", "long", run["run_id"], "nap")["nap"]  # noqa: E731
    wait_for(lambda: state()["state"] == "running", 30, "the task to run")
    assert env.cli("tasks", "clear", "long", run["run_id"], "nap").exit_code == 0
    # The second try starts long before the first one's 20 s are up: the first was stopped.
    wait_for(lambda: state()["state"] == "running" and state()["try_number"] == 2, 15, "the second try")
    env.cli("runs", "cancel", "long", run["run_id"])


SHRINKING = """
    from ductwork import flow, task
    from _common import MARKS


    @task
    def sizes():
        return list(range(int((MARKS / "count").read_text())))


    @task
    def work(x):
        return x * 10


    @task
    def total(values):
        return sum(values)


    @flow(schedule=None)
    def shrinking():
        total(work.expand(x=sizes()))
"""


def test_instances_a_shorter_list_removes_are_skipped_not_recorded_as_success(env: Env) -> None:
    """Airflow shows them "removed"; they were recorded success with a new try that did nothing."""
    (env.marks / "count").write_text("3")
    env.write_flow("shrinking.py", SHRINKING)
    wait_for(lambda: "shrinking" in env.flow_ids(), 60, "the flow to be parsed")
    assert env.cli("trigger", "shrinking", "--run-id", "r1").exit_code == 0
    wait_for(lambda: env.instances("shrinking", "r1").get("total") and _states(env)["total"] == "success", 60, "r1")
    (env.marks / "count").write_text("2")
    assert env.cli("tasks", "clear", "shrinking", "r1", "sizes", "--downstream").exit_code == 0
    wait_for(lambda: _states(env)["total"] == "success" and _states(env)["work[2]"] != "none", 60, "the re-run")
    states = _states(env)
    assert states["work[0]"] == states["work[1]"] == "success"
    assert states["work[2]"] == "skipped"
    assert states["work"] == "success"


def _states(env: Env) -> dict[str, str]:
    return {t: i.state.value for t, i in env.instances("shrinking", "r1").items()}


LOST_TRIES = """
    import datetime as dt, os, time
    from ductwork import Flow, PythonOperator
    from _common import MARKS


    def told(context):
        (MARKS / f"told.{context['task_id']}.{context['try_number']}").write_text(str(context["exception"]))


    def hang():
        time.sleep(60)


    def die():
        os._exit(3)


    with Flow("lost", schedule=None) as lost:
        PythonOperator(task_id="hangs", python_callable=hang, execution_timeout=dt.timedelta(seconds=1),
                       on_failure_callback=told)
        PythonOperator(task_id="dies", python_callable=die, on_failure_callback=told,
                       on_retry_callback=told, retries=1, retry_delay=0)
"""


def test_a_try_that_times_out_or_whose_worker_dies_still_has_its_callbacks_called(env: Env) -> None:
    """Alerts were lost exactly for hangs and OOM kills: no callback, no e-mail."""
    env.write_flow("lost.py", LOST_TRIES)
    wait_for(lambda: "lost" in env.flow_ids(), 60, "the flow to be parsed")
    assert env.cli("trigger", "lost", "--run-id", "r1").exit_code == 0
    wait_for(lambda: len(list(env.marks.glob("told.*"))) >= 3, 60, "the three callbacks")
    told = {p.name: p.read_text() for p in env.marks.glob("told.*")}
    assert set(told) == {"told.hangs.1", "told.dies.1", "told.dies.2"}
    assert "timed out after 1s" in told["told.hangs.1"]
    assert "exited with code 3" in told["told.dies.2"] or "died" in told["told.dies.2"], told


LOST_LUIGI_TRIES = """
    import os, time
    import luigi
    from ductwork import Flow
    from _common import MARKS


    class Hangs(luigi.Task):
        worker_timeout = 1

        def output(self):
            return luigi.LocalTarget(str(MARKS / "hangs.out"))

        def run(self):
            time.sleep(60)


    class Dies(luigi.Task):
        def output(self):
            return luigi.LocalTarget(str(MARKS / "dies.out"))

        def run(self):
            os._exit(3)


    class Both(luigi.WrapperTask):
        def requires(self):
            return [Hangs(), Dies()]


    @luigi.Task.event_handler(luigi.Event.FAILURE)
    def failed(task, exception):
        (MARKS / f"luigi.failure.{task.task_family}").write_text(str(exception))


    @luigi.Task.event_handler(luigi.Event.TIMEOUT)
    def timed_out(task, error):
        (MARKS / f"luigi.timeout.{task.task_family}").write_text(str(error))


    @luigi.Task.event_handler(luigi.Event.PROCESS_FAILURE)
    def process_died(task, error):
        (MARKS / f"luigi.process_failure.{task.task_family}").write_text(str(error))


    lost_luigi = Flow.from_task(Both, flow_id="lost_luigi")
"""


def test_a_luigi_task_that_times_out_or_whose_worker_dies_has_its_event_handlers_called(env: Env) -> None:
    """Class tasks ran no failure handler at all under the scheduler when their try timed out
    (``worker_timeout``) or their process died: FAILURE, and Luigi's TIMEOUT or
    PROCESS_FAILURE, are fired afterwards, as Luigi's worker fires them."""
    env.write_flow("lost_luigi.py", LOST_LUIGI_TRIES)
    wait_for(lambda: "lost_luigi" in env.flow_ids(), 60, "the flow to be parsed")
    assert env.cli("trigger", "lost_luigi", "--run-id", "r1").exit_code == 0
    wait_for(lambda: len(list(env.marks.glob("luigi.*"))) >= 4, 60, "the four handlers")
    fired = {p.name: p.read_text() for p in env.marks.glob("luigi.*")}
    assert set(fired) == {
        "luigi.failure.Hangs",
        "luigi.timeout.Hangs",
        "luigi.failure.Dies",
        "luigi.process_failure.Dies",
    }, fired
    assert "timed out after 1s" in fired["luigi.timeout.Hangs"]


FAILS_UNTIL_FIXED = """
    from ductwork import Flow, PythonOperator
    from _common import MARKS


    def load():
        if (MARKS / "broken").exists():
            raise RuntimeError("the source is broken")


    with Flow("range_flow", schedule="@daily", start_date="2024-01-01", catchup=False) as range_flow:
        PythonOperator(task_id="load", python_callable=load) >> PythonOperator(task_id="after", python_callable=lambda: 1)
"""


def test_backfill_rerun_failed_runs_the_failed_tasks_of_a_range_again(env: Env) -> None:
    """There was no way to re-run a range (Airflow's backfill --rerun-failed-tasks)."""
    (env.marks / "broken").touch()
    env.write_flow("range_flow.py", FAILS_UNTIL_FIXED)
    wait_for(lambda: "range_flow" in env.flow_ids(), 60, "the flow to be parsed")
    window = ("--start", "2024-03-01", "--end", "2024-03-02")
    assert env.cli("backfill", "range_flow", *window).exit_code == 0

    def states() -> list[str]:
        return [
            r["state"]
            for r in env.json("runs", "list", "range_flow", "--limit", "10")["runs"]
            if r["run_type"] == "backfill"
        ]

    wait_for(lambda: states() == ["failed", "failed"], 60, "both runs to fail")
    (env.marks / "broken").unlink()
    planned = env.json("backfill", "range_flow", *window, "--rerun-failed", "--dry-run")
    assert all(p["exists"] and sorted(p["tasks"]) == ["after", "load"] for p in planned), planned
    assert env.cli("backfill", "range_flow", *window, "--rerun-failed").exit_code == 0
    wait_for(lambda: states() == ["success", "success"], 60, "both runs to succeed")


def test_a_luigi_task_that_times_out_in_a_build_has_its_timeout_and_failure_handlers_called(tmp_path: Path) -> None:
    """In ``ductwork build`` (in-process), a try past its ``worker_timeout`` fired no
    ``Event.TIMEOUT``, and no ``FAILURE`` when the build ended before the try's code returned."""
    from tests.ductwork_process import ductwork_process

    marks = tmp_path / "marks"
    marks.mkdir()
    module = textwrap.dedent(LOST_LUIGI_TRIES).replace("from _common import MARKS", "")
    (tmp_path / "lost_build.py").write_text(f"from pathlib import Path\nMARKS = Path({str(marks)!r})\n{module}")
    env = {"DUCTWORK_HOME": str(tmp_path / "home"), "PYTHONPATH": str(tmp_path)}
    built = ductwork_process("build", "--module", "lost_build", "Hangs", "--no-progress", env=env, cwd=tmp_path)
    assert built.returncode == 1, built.stdout + built.stderr
    fired = {p.name: p.read_text() for p in marks.glob("luigi.*")}
    assert set(fired) == {"luigi.failure.Hangs", "luigi.timeout.Hangs"}, fired
    assert "timed out after 1s" in fired["luigi.timeout.Hangs"]


FROM_A_VARIABLE = """
    from airflow import DAG
    from airflow.models import Variable
    from airflow.operators.empty import EmptyOperator

    with DAG("per_region", schedule=None) as dag:
        for region in Variable.get("regions", default_var="eu").split(","):
            EmptyOperator(task_id=f"load_{region}")
"""


def test_a_flow_made_from_a_variable_is_parsed_again_when_the_variable_changes(env: Env) -> None:
    """A DAG file that makes its tasks from a variable at import: changing the variable (CLI,
    API, UI) changes the flow within a few seconds, as Airflow's periodic re-parse would; the
    scheduler kept the tasks of the variable's old value until the file itself changed."""
    env.write_flow("per_region.py", FROM_A_VARIABLE)
    wait_for(lambda: "per_region" in env.flow_ids(), 60, "the flow to be parsed")
    assert _flow_tasks(env, "per_region") == ["load_eu"]
    assert env.cli("variables", "set", "regions", "eu,us,apac").exit_code == 0
    wait_for(lambda: _flow_tasks(env, "per_region") == ["load_apac", "load_eu", "load_us"], 30, "the new tasks")
    assert env.cli("trigger", "per_region", "--run-id", "after").exit_code == 0
    wait_for(lambda: len(env.instances("per_region", "after")) == 3, 30, "a run of the three tasks")


TOP_LEVEL_VARIABLE = """
    import os
    from pathlib import Path

    from airflow import DAG
    from airflow.models import Variable
    from airflow.operators.python import PythonOperator

    MODE = Variable.get("load_mode", default_var="full")  # read once, when the file is imported

    def load(run_id):
        Path(os.environ["DUCTWORK_TEST_MARKS"], f"mode.{run_id}").write_text(MODE)

    with DAG("top_level_variable", schedule=None) as dag:
        PythonOperator(task_id="load", python_callable=load, op_args=["{{ run_id }}"])
"""


def test_a_warm_worker_reads_a_top_level_variable_again_after_it_changed(env: Env) -> None:
    """A DAG file's top-level ``Variable.get`` was read once for the life of a warm worker: a run
    (or a task cleared) after the variable changed ran with the old value, where Airflow reads it
    at every try. The worker imports the file again when a variable its import read changed."""
    env.write_flow("top_level_variable.py", TOP_LEVEL_VARIABLE)
    wait_for(lambda: "top_level_variable" in env.flow_ids(), 60, "the flow to be parsed")
    marks = env.marks
    for run_id, value in (("v1", None), ("v2", "incremental"), ("v3", "full")):
        if value is not None:
            assert env.cli("variables", "set", "load_mode", value).exit_code == 0
        assert env.cli("trigger", "top_level_variable", "--run-id", run_id).exit_code == 0
        wait_for(lambda run_id=run_id: (marks / f"mode.{run_id}").exists(), 60, f"run {run_id}")
    assert [(marks / f"mode.{r}").read_text() for r in ("v1", "v2", "v3")] == ["full", "incremental", "full"]


def _flow_tasks(env: Env, flow_id: str) -> list[str]:
    from ductwork.services.runs import flow_graph

    return sorted(flow_graph(env.engine, flow_id).nodes)


def _job_states(db: Path) -> list[str]:
    import sqlalchemy as sa

    from ductwork.store.tables import scheduler_jobs

    engine = create_engine(f"sqlite:///{db}")
    try:
        with read_transaction(engine) as conn:
            return [r.state for r in conn.execute(sa.select(scheduler_jobs.c.state).order_by(scheduler_jobs.c.id))]
    finally:
        engine.dispose()


def test_a_scheduler_that_fails_is_recorded_failed_not_success_nor_running(tmp_path: Path) -> None:
    """A scheduler ended by an error was recorded ``success``; one whose executor could not start
    (no Kubernetes API to talk to) left its job ``running`` for ever."""

    class Unstartable:
        def start(self) -> None:
            raise RuntimeError("no Kubernetes API to talk to")

    class Crashing:
        starts_when_used = False

        def start(self) -> None:
            return None

        def __getattr__(self, name: str) -> Any:
            raise RuntimeError(f"the executor broke ({name})")

    (tmp_path / "flows").mkdir()
    db = tmp_path / "ductwork.db"
    settings = Settings(home=tmp_path / "home", flows_folder=tmp_path / "flows", database_url=f"sqlite:///{db}")
    for factory, said in ((Unstartable, "no Kubernetes API"), (Crashing, "the executor broke")):
        service = SchedulerService(settings, executor_factory=lambda _s, _e, f=factory: f())  # type: ignore[misc]
        with pytest.raises(RuntimeError, match=said):
            service.run()
    assert _job_states(db) == ["failed", "failed"]
    service = SchedulerService(settings)
    service.run(until=lambda: True)
    assert _job_states(db)[-1] == "success"
