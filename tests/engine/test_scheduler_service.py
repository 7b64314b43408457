"""The scheduler service through the CLI: trigger, wait, inspect, clear, mark, backfill, pause,
depends_on_past, class-task runs, reschedule sensors, timeouts, and DST-correct scheduling."""

from __future__ import annotations

import datetime as dt
import json
import os
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result

from ductwork.cli.main import cli
from ductwork.core.clock import FrozenClock
from ductwork.core.graph import FlowGraph, FlowMeta, NodeSpec
from ductwork.core.schedule import DataInterval
from ductwork.core.states import RunState
from ductwork.engine.scheduler import SchedulerOptions, SchedulerService
from ductwork.services import runs as run_service
from ductwork.settings import Settings
from ductwork.store import migrate
from ductwork.store.engine import create_engine, read_transaction, transaction
from ductwork.store.repo import flows as flow_repo
from ductwork.store.repo import runs as run_repo

FLOWS = {
    "basic.py": """
        import os
        from pathlib import Path
        from ductwork import BashOperator, Flow, IntParameter, PythonOperator

        MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])

        def flaky(ti):
            marker = MARKS / f"flaky-{ti.run_id}"
            if not marker.exists():
                marker.write_text("failed once")
                raise RuntimeError("first attempt fails")
            return "recovered"

        with Flow("basic", schedule="@daily", start_date="2024-01-01", params={"n": IntParameter(default=2)}) as basic:
            hello = BashOperator(task_id="hello", bash_command="echo hello {{ params.n }} times")
            double = PythonOperator(task_id="double", python_callable=lambda params: params["n"] * 2)
            hello >> double

        with Flow("fragile", schedule=None) as fragile:
            a = PythonOperator(task_id="a", python_callable=flaky)
            b = PythonOperator(task_id="b", python_callable=lambda: "after")
            a >> b

        with Flow("history", schedule=None) as history:
            PythonOperator(task_id="step", python_callable=lambda: 1, depends_on_past=True)
    """,
    "callbacks.py": """
        import os
        from pathlib import Path
        from ductwork import Flow, PythonOperator

        MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])

        def note(context):
            (MARKS / f"callback-{context['flow_id']}-{context['run_state']}").write_text(context["run_id"])

        def boom():
            raise RuntimeError("no")

        with Flow("called_back", schedule=None, on_success_callback=note, on_failure_callback=note,
                  params={"fail": False}) as called_back:
            PythonOperator(task_id="t", python_callable=lambda params: boom() if params["fail"] else 1)

        def broken_alert(context):
            return context["no_such_key_in_the_context"]

        with Flow("badly_called_back", schedule=None, on_failure_callback=broken_alert) as badly_called_back:
            PythonOperator(task_id="t", python_callable=boom)
    """,
    "sensing.py": """
        import os
        from pathlib import Path
        from ductwork import BaseSensorOperator, BashOperator, Flow, PythonOperator

        MARKS = Path(os.environ["DUCTWORK_TEST_MARKS"])

        class MarkerSensor(BaseSensorOperator):
            def poke(self, context):
                return (MARKS / "ready").exists()

        def later():
            import time
            time.sleep(1.0)
            (MARKS / "ready").write_text("go")

        # Both tasks share a pool of one slot: the task that writes the marker can only run if
        # the waiting sensor gives its slot back between pokes (reschedule mode).
        with Flow("sensing", schedule=None) as sensing:
            MarkerSensor(task_id="wait", mode="reschedule", poke_interval=0.3, timeout=60, pool="single",
                         priority_weight=10)
            PythonOperator(task_id="meanwhile", python_callable=later, pool="single")

        with Flow("slow", schedule=None) as slow:
            BashOperator(task_id="sleepy", bash_command="sleep 30", execution_timeout=1)

        with Flow("oversized", schedule=None) as oversized:
            BashOperator(task_id="big", bash_command="echo never", pool="single", pool_slots=3)
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
            "DUCTWORK_REPORTCONFIG_OUTPUT_DIR": str(tmp / "reports"),
        }

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=self.vars, catch_exceptions=False)

    def json(self, *args: str, exit_codes: tuple[int, ...] = (0,)) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code in exit_codes, result.output
        return json.loads(result.output)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("scheduler")
    e = Env(tmp)
    e.flows.mkdir()
    e.marks.mkdir()
    for name, source in FLOWS.items():
        (e.flows / name).write_text(textwrap.dedent(source))
    old = {k: os.environ.get(k) for k in e.vars}
    os.environ.update(e.vars)  # the scheduler's worker processes inherit these
    settings = Settings(home=tmp / "home", flows_folder=e.flows, database_url=e.url, parallelism=2)
    engine = create_engine(e.url)
    migrate.upgrade(engine)
    with transaction(engine) as conn:
        from ductwork.store.repo import pools

        pools.put_pool(conn, "single", 1)
    engine.dispose()
    service = SchedulerService(settings, options=SchedulerOptions(poll_interval=0.2, parse_interval=0.5))
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    engine = create_engine(e.url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with read_transaction(engine) as conn:
                if {"basic", "sensing"} <= {f.flow_id for f in flow_repo.list_flows(conn)}:
                    break
        except Exception:
            pass
        time.sleep(0.2)
    engine.dispose()
    try:
        yield e
    finally:
        service.stop()
        thread.join(timeout=60)
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_trigger_with_a_parameter_and_wait(env: Env) -> None:
    run = env.json("trigger", "basic", "--param", "n=21", "--wait", "--timeout", "60")
    assert run["state"] == "success" and run["params"] == {"n": 21}
    shown = env.json("runs", "show", "basic", run["run_id"])
    assert shown["tasks"] == {
        "hello": {"state": "success", "try_number": 1},
        "double": {"state": "success", "try_number": 1},
    }
    log = env.cli("tasks", "logs", "basic", run["run_id"], "hello")
    assert "hello 21 times" in log.output
    assert env.json("tasks", "state", "basic", run["run_id"], "double") == {
        "double": {"state": "success", "try_number": 1}
    }
    listed = env.json("runs", "list", "basic")
    assert run["run_id"] in [r["run_id"] for r in listed["runs"]]


def test_bad_trigger_requests_are_clear(env: Env) -> None:
    bad = env.cli("trigger", "basic", "--param", "n=many")
    assert bad.exit_code == 2 and "flow 'basic': parameter 'n' wants int, got 'many'" in bad.output
    unknown = env.cli("trigger", "basik")
    assert unknown.exit_code == 2 and "Did you mean 'basic'" in unknown.output
    missing = env.cli("runs", "show", "basic", "nope")
    assert missing.exit_code == 2 and "flow 'basic' has no run 'nope'" in missing.output


def test_why_names_the_pool_a_ready_task_waits_for(env: Env) -> None:
    """A task needing more slots than its pool has never starts; `why` said "runs: the task has
    no cache" (only the scheduler's log told)."""
    run = env.json("trigger", "oversized")
    deadline = time.monotonic() + 30
    while env.json("tasks", "state", "oversized", run["run_id"])["big"]["state"] != "scheduled":
        assert time.monotonic() < deadline, "the task never became ready"
        time.sleep(0.2)
    why = env.json("why", "oversized", "big", run["run_id"])
    assert why["decision"] == "waiting", why
    assert "needs 3 slot(s) of pool 'single', which has 1" in why["text"], why
    assert env.cli("runs", "cancel", "oversized", run["run_id"]).exit_code == 0


def test_clear_a_failed_task_and_see_it_rerun(env: Env) -> None:
    run = env.json("trigger", "fragile", "--wait", "--timeout", "60", exit_codes=(1,))
    assert run["state"] == "failed"
    preview = env.json("tasks", "clear", "fragile", run["run_id"], "a", "--downstream", "--dry-run")
    assert preview == {"dry_run": True, "cleared": ["a", "b"], "other_runs": []}
    assert env.json("tasks", "state", "fragile", run["run_id"])["a"]["state"] == "failed"
    cleared = env.json("tasks", "clear", "fragile", run["run_id"], "a", "--downstream")
    assert cleared["cleared"] == ["a", "b"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = env.json("tasks", "state", "fragile", run["run_id"])
        if states["b"]["state"] == "success":
            break
        time.sleep(0.2)
    assert states == {"a": {"state": "success", "try_number": 2}, "b": {"state": "success", "try_number": 1}}
    assert env.json("runs", "show", "fragile", run["run_id"])["state"] == "success"


def test_mark_and_depends_on_past(env: Env) -> None:
    first = env.json("trigger", "history", "--date", "2024-03-01", "--conf", "{}")
    # Mark once the first run ended: a mark that races the scheduler's dispatch of the same task
    # by milliseconds may be overtaken by the try it started (the scheduler sees marks when it
    # next looks at the run).
    deadline = time.monotonic() + 30
    while env.json("runs", "show", "history", first["run_id"])["state"] != "success":
        assert time.monotonic() < deadline, "the first run never ended"
        time.sleep(0.2)
    failed = env.cli("tasks", "mark", "history", first["run_id"], "step", "--state", "failed")
    assert failed.exit_code == 0 and "marked 1 task(s) failed" in failed.output, failed.output
    second = env.json("trigger", "history", "--date", "2024-03-02")
    time.sleep(2.0)
    assert env.json("tasks", "state", "history", second["run_id"])["step"]["state"] in ("none", "scheduled")
    why = env.json("why", "history", "step", second["run_id"])["text"]
    assert "waits (depends_on_past)" in why and first["run_id"] in why, why  # it said "runs: no cache"
    marked = env.cli("tasks", "mark", "history", first["run_id"], "step", "--state", "success")
    assert "marked 1 task(s) success" in marked.output
    deadline = time.monotonic() + 30
    while env.json("runs", "show", "history", second["run_id"])["state"] != "success":
        assert time.monotonic() < deadline, "the second run never ran after the first succeeded"
        time.sleep(0.2)
    # The first run's task fails again and the second's is cleared: it waits again (the
    # scheduler remembered its first "yes" for good, and ran it).
    assert env.cli("tasks", "mark", "history", first["run_id"], "step", "--state", "failed").exit_code == 0
    assert env.cli("tasks", "clear", "history", second["run_id"], "step").exit_code == 0
    time.sleep(2.0)
    assert env.json("tasks", "state", "history", second["run_id"])["step"]["state"] in ("none", "scheduled")


def test_backfill_dry_run_lists_runs_and_tasks_then_runs_them(env: Env) -> None:
    planned = env.json("backfill", "basic", "--start", "2024-02-01", "--end", "2024-02-03", "--dry-run")
    assert [p["logical_date"][:10] for p in planned] == ["2024-02-01", "2024-02-02", "2024-02-03"]
    assert all(p["tasks"] == ["hello", "double"] and not p["exists"] for p in planned)
    assert env.json("runs", "list", "basic", "--limit", "1000")["total"] >= 1
    created = env.json("backfill", "basic", "--start", "2024-02-01", "--end", "2024-02-03")
    assert [r["run_type"] for r in created] == ["backfill"] * 3
    again = env.json("backfill", "basic", "--start", "2024-02-01", "--end", "2024-02-03", "--dry-run")
    assert all(p["exists"] for p in again)
    deadline = time.monotonic() + 60
    while True:
        states = {r["run_id"]: r["state"] for r in env.json("runs", "list", "basic", "--limit", "1000")["runs"]}
        if all(states[r["run_id"]] == "success" for r in created):
            break
        assert time.monotonic() < deadline
        time.sleep(0.3)


def test_pause_stops_new_scheduled_runs(env: Env) -> None:
    assert env.cli("flows", "pause", "basic").output.strip() == "flow basic: paused"
    time.sleep(1.0)
    before = env.json("runs", "list", "basic", "--limit", "1000")["total"]
    time.sleep(1.0)
    assert env.json("runs", "list", "basic", "--limit", "1000")["total"] == before
    assert "unpaused" in env.cli("flows", "unpause", "basic").output


def test_class_task_runs_get_their_graph_from_the_parser(env: Env) -> None:
    import shutil

    root = Path(__file__).resolve().parents[2]
    shutil.copy(root / "examples" / "luigi_reports.py", env.flows / "luigi_reports.py")
    deadline = time.monotonic() + 60
    while (
        env.cli(
            "trigger", "luigi_reports_daily", "--param", "days=1", "--date", "2024-05-01", "--run-id", "lr"
        ).exit_code
        != 0
    ):
        assert time.monotonic() < deadline
        time.sleep(0.5)
    while env.json("runs", "show", "luigi_reports_daily", "lr")["state"] not in ("success", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    shown = env.json("runs", "show", "luigi_reports_daily", "lr")
    assert shown["state"] == "success"
    assert "DailySummary(date=2024-05-01)" in shown["tasks"]


def test_reschedule_sensor_frees_its_slot_and_timeouts_stop_tasks(env: Env) -> None:
    run = env.json("trigger", "sensing", "--wait", "--timeout", "60")
    assert run["state"] == "success"
    slow = env.json("trigger", "slow", "--wait", "--timeout", "60", exit_codes=(1,))
    assert slow["state"] == "failed"
    engine = create_engine(env.url)
    with read_transaction(engine) as conn:
        from ductwork.store.repo import tasks as task_repo

        record = run_repo.get_run(conn, "slow", slow["run_id"])
        assert record is not None
        (attempt,) = task_repo.list_tries(conn, record.pk, "sleepy")
        sensing = run_repo.get_run(conn, "sensing", run["run_id"])
        assert sensing is not None
        events = [
            e.new
            for e in __import__("ductwork.store.repo.events", fromlist=["x"]).list_state_events(
                conn, sensing.pk, task_id="wait"
            )
        ]
    engine.dispose()
    assert "timed out after 1s" in (attempt.error or "")
    assert attempt.duration is not None and attempt.duration < 20
    assert "up_for_reschedule" in events


def test_daily_in_madrid_through_the_scheduler_gets_one_run_per_local_day(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dst.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    meta = FlowMeta(
        "madrid",
        schedule="@daily",
        timezone="Europe/Madrid",
        start_date="2024-03-29T00:00:00+01:00",
        end_date="2024-10-29T00:00:00+01:00",
        catchup=True,
        max_active_runs=10_000,
    )
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, FlowGraph(meta, {"t": NodeSpec("t")}), fileloc=str(tmp_path / "madrid.py"))
    clock = FrozenClock("2024-03-28T00:00:00+00:00")
    settings = Settings(home=tmp_path / "home", flows_folder=tmp_path, database_url=url)
    service = SchedulerService(settings, clock=clock, engine=engine)
    for _ in range(0, 24 * 7):  # the week of the March change, hour by hour
        clock.advance(dt.timedelta(hours=1))
        service.create_due_runs()
    clock.advance(dt.timedelta(days=220))  # then everything up to November at once
    service.create_due_runs()
    with read_transaction(engine) as conn:
        runs = run_repo.list_runs(conn, flow_id="madrid", limit=10_000, newest_first=False).items
    madrid = ZoneInfo("Europe/Madrid")
    local = [r.logical_date.astimezone(madrid) for r in runs]
    days = [d.date() for d in local]
    assert days[0] == dt.date(2024, 3, 29) and days[-1] == dt.date(2024, 10, 29)
    assert days == sorted(set(days)) and len(days) == (days[-1] - days[0]).days + 1
    assert all((d.hour, d.minute) == (0, 0) for d in local)
    engine.dispose()


def test_flow_callbacks_run_when_a_run_ends(env: Env) -> None:
    ok = env.json("trigger", "called_back", "--wait", "--timeout", "60")
    bad = env.json("trigger", "called_back", "--param", "fail=true", "--wait", "--timeout", "60", exit_codes=(1,))
    deadline = time.monotonic() + 60
    success, failure = env.marks / "callback-called_back-success", env.marks / "callback-called_back-failed"
    while not (success.exists() and failure.exists()):
        assert time.monotonic() < deadline, "the flow callbacks were not called"
        time.sleep(0.2)
    assert success.read_text() == ok["run_id"] and failure.read_text() == bad["run_id"]


def test_a_flow_callback_that_raises_is_logged_by_the_scheduler_with_its_traceback(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """Flow callbacks run in a child process whose own log nobody reads: a callback that raised
    left no trace at all under the scheduler (``ductwork run`` printed it)."""
    env.json("trigger", "badly_called_back", "--wait", "--timeout", "60", exit_codes=(1,))
    deadline = time.monotonic() + 60
    while not any("no_such_key_in_the_context" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, "the callback's error was not logged"
        time.sleep(0.2)
    (record,) = [r for r in caplog.records if "no_such_key_in_the_context" in r.getMessage()]
    assert record.levelname == "ERROR" and "badly_called_back" in record.getMessage()
    assert "broken_alert" in record.getMessage() and "KeyError" in record.getMessage()


def test_a_flow_run_once_from_outside_the_flows_folder_is_not_scheduled(env: Env) -> None:
    """`ductwork run other/file.py` records the flow (its run shows in the UI); the scheduler
    must not start that flow's schedule, with a catch-up from its start date, on its own."""
    elsewhere = env.tmp / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "ad_hoc.py").write_text(
        textwrap.dedent(
            """
            import datetime as dt
            from ductwork import EmptyOperator, Flow

            with Flow("ad_hoc", schedule="@daily", start_date=dt.datetime(2024, 1, 1), catchup=True) as f:
                EmptyOperator(task_id="a")
            """
        )
    )
    ran = env.json("run", str(elsewhere / "ad_hoc.py"), "--no-progress")
    assert ran["state"] == "success"
    time.sleep(1.5)  # several of the scheduler's looks at the database (every 0.2 s)
    runs = env.json("runs", "list", "ad_hoc", "--limit", "1000")["runs"]
    assert [r["run_type"] for r in runs] == ["manual"]


def test_a_run_that_ductwork_run_executes_is_never_taken_by_the_scheduler(env: Env) -> None:
    """`ductwork run` executes its run in its own process while a scheduler runs on the same
    database: each task runs once (the scheduler took such runs over and ran their tasks again)."""
    marks = env.marks / "in_process.txt"
    (env.flows / "in_process.py").write_text(
        textwrap.dedent(
            f"""
            import time
            from ductwork import Flow, PythonOperator

            def mark():
                time.sleep(1.0)  # several of the scheduler's looks at the database (every 0.2 s)
                with open({str(marks)!r}, "a") as fh:
                    fh.write("ran\\n")

            with Flow("in_process", schedule=None) as f:
                PythonOperator(task_id="a", python_callable=mark) >> PythonOperator(task_id="b", python_callable=mark)
            """
        )
    )
    ran = env.json("run", "in_process", "--no-progress")
    assert ran["state"] == "success"
    time.sleep(1.5)  # a task the scheduler ran would write its line meanwhile
    assert marks.read_text() == "ran\nran\n"


def _daily_service(tmp_path: Path, *, max_active_runs: int = 16) -> tuple[Any, FrozenClock, SchedulerService]:
    url = f"sqlite:///{tmp_path / 'once.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    meta = FlowMeta(
        "daily",
        schedule="@daily",
        start_date="2026-12-01T00:00:00+00:00",
        catchup=True,
        max_active_runs=max_active_runs,
    )
    with transaction(engine) as conn:
        flow_repo.upsert_flow(conn, FlowGraph(meta, {"t": NodeSpec("t")}), fileloc=str(tmp_path / "daily.py"))
    clock = FrozenClock("2026-12-02T00:30:00+00:00")
    settings = Settings(home=tmp_path / "home", flows_folder=tmp_path, database_url=url)
    return engine, clock, SchedulerService(settings, clock=clock, engine=engine)


def _dates(engine: Any) -> list[tuple[str, str]]:
    with read_transaction(engine) as conn:
        found = run_repo.list_runs(conn, flow_id="daily", limit=100, newest_first=False).items
    return [(r.logical_date.date().isoformat(), r.run_type) for r in found]


def test_a_date_a_backfill_or_a_trigger_ran_gets_no_second_scheduled_run(tmp_path: Path) -> None:
    """One run per logical date, as in Airflow: the same interval ran twice (backfill__ and scheduled__)."""
    engine, clock, service = _daily_service(tmp_path, max_active_runs=1)
    graph = run_service.flow_graph(engine, "daily")
    for day in (2, 3):  # ahead of the schedule, while no scheduler ran
        start = dt.datetime(2026, 12, day, tzinfo=dt.UTC)
        interval = DataInterval(start, start + dt.timedelta(days=1))
        run_service.create_run(engine, graph, run_type="backfill", logical_date=start, interval=interval, params={})
    # a manual run that took the id the schedule would give 2026-12-05
    taken = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)
    run_service.create_run(
        engine,
        graph,
        run_type="manual",
        logical_date=taken + dt.timedelta(hours=7),
        interval=DataInterval(taken, taken + dt.timedelta(days=1)),
        run_id=f"scheduled__{taken.isoformat()}",
        params={},
    )
    for _ in range(6):
        clock.advance(dt.timedelta(days=1))
        service.create_due_runs()
        with transaction(engine) as conn:  # each run ends, so max_active_runs=1 lets the next one be created
            for record in run_repo.active_runs(conn, flow_id="daily"):
                run_repo.set_run_state(conn, record.pk, RunState.SUCCESS)
    dates = _dates(engine)
    days = [d for d, _ in dates]
    assert len(days) == len(set(days)), dates
    assert ("2026-12-02", "backfill") in dates and ("2026-12-03", "backfill") in dates
    assert ("2026-12-04", "scheduled") in dates and ("2026-12-06", "scheduled") in dates  # not held up
