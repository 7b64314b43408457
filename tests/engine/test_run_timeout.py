"""A flow's ``run_timeout`` (Airflow's ``dagrun_timeout``): a run that runs longer fails, its
running tries are stopped and end failed, the tasks not started are skipped, and the run's events
say why. Under a real ``ductwork scheduler`` process, for a Ductwork flow and for an Airflow DAG
file run through the shim; in-process through ``ductwork.testing``; and through the graph round
trip the run records."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ductwork import Flow, PythonOperator
from ductwork.compat.doctor import examine
from ductwork.core.graph import FlowGraph
from ductwork.errors import DefinitionError
from ductwork.testing import SystemClock, run_flow

FLOW = textwrap.dedent(
    """
    import datetime as dt
    import os
    import time
    from pathlib import Path

    from ductwork import Flow, PythonOperator

    MARKS = Path(os.environ["RUN_TIMEOUT_MARKS"])

    def nap():
        (MARKS / "nap.pid").write_text(str(os.getpid()))
        time.sleep(120)

    def after():
        (MARKS / "after.ran").write_text("it ran")

    with Flow("slow", run_timeout=dt.timedelta(seconds=2)) as slow:
        first = PythonOperator(task_id="first", python_callable=lambda: "ok")
        sleeper = PythonOperator(task_id="nap", python_callable=nap)
        last = PythonOperator(task_id="after", python_callable=after)
        first >> sleeper >> last

    with Flow("slow_warm_up") as warm_up:  # no timeout: it loads this file into the worker
        PythonOperator(task_id="hello", python_callable=lambda: "ok")
    """
)

DAG_FILE = textwrap.dedent(
    """
    import os
    from datetime import datetime, timedelta

    from airflow import DAG
    from airflow.operators.bash import BashOperator

    MARKS = os.environ["RUN_TIMEOUT_MARKS"]

    with DAG(
        "af_slow",
        start_date=datetime(2024, 1, 1),
        schedule=None,
        catchup=False,
        dagrun_timeout=timedelta(seconds=2),
    ) as dag:
        nap = BashOperator(task_id="nap", bash_command=f"echo $$ > {MARKS}/af_nap.pid; exec sleep 120")
        after = BashOperator(task_id="after", bash_command=f"touch {MARKS}/af_after.ran")
        nap >> after

    with DAG("af_slow_warm_up", start_date=datetime(2024, 1, 1), schedule=None, catchup=False):
        BashOperator(task_id="hello", bash_command="echo hello")
    """
)

REASON = "the run timed out: it ran longer than its run_timeout (0:00:02)"


# --- the definition and its graph ------------------------------------------------------------
def test_run_timeout_survives_the_graph_round_trip() -> None:
    with Flow("timed", run_timeout=dt.timedelta(minutes=90)) as timed:
        PythonOperator(task_id="a", python_callable=lambda: None)
    with Flow("untimed") as untimed:
        PythonOperator(task_id="a", python_callable=lambda: None)
    graph = timed.to_graph()
    again = FlowGraph.from_dict(json.loads(json.dumps(graph.to_dict())))
    assert again.meta.run_timeout == 5400.0
    assert again.version_hash() == graph.version_hash()
    # A flow without one records nothing new: its graph (and version hash) is as before.
    assert "run_timeout" not in untimed.to_graph().to_dict()["meta"]
    assert Flow("seconds", run_timeout=30).to_graph().meta.run_timeout == 30.0


@pytest.mark.parametrize(("value", "words"), [(dt.timedelta(0), "must be positive"), ("1h", "timedelta or a number")])
def test_a_bad_run_timeout_is_refused_naming_the_flow(value: Any, words: str) -> None:
    with pytest.raises(DefinitionError) as err:
        Flow("bad_timeout", run_timeout=value)
    assert "flow 'bad_timeout'" in str(err.value) and "run_timeout" in str(err.value) and words in str(err.value)


def test_doctor_no_longer_calls_dagrun_timeout_ignored(tmp_path: Path) -> None:
    dag = tmp_path / "af_slow.py"
    dag.write_text(DAG_FILE)
    found = [f for f in examine(dag) if "dagrun_timeout" in f.feature]
    assert [f.status for f in found] == ["differs"]
    assert "enforced" in found[0].note


# --- in-process ------------------------------------------------------------------------------
def test_an_in_process_run_past_its_timeout_fails_and_skips_what_did_not_start() -> None:
    with Flow("slow_local", run_timeout=dt.timedelta(seconds=1)) as slow:
        first = PythonOperator(task_id="first", python_callable=lambda: "ok")
        nap = PythonOperator(task_id="nap", python_callable=lambda: time.sleep(3))
        after = PythonOperator(task_id="after", python_callable=lambda: "never")
        first >> nap >> after
    summary = run_flow(slow, clock=SystemClock())
    assert summary.state == "failed"
    assert summary["first"].state == "success"
    assert summary["nap"].state == "failed"
    assert summary["nap"].tries[-1].error == "cancelled by run timeout"
    assert summary["after"].state == "skipped" and summary["after"].tries == []
    assert summary["after"].reason == "not started: the run timed out: it ran longer than its run_timeout (0:00:01)"


def test_ductwork_run_stops_at_the_timeout_and_records_why(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ductwork.cli.main import cli

    flow_file = tmp_path / "slow_cli.py"
    flow_file.write_text(
        textwrap.dedent(
            """
            import datetime as dt
            import time

            from ductwork import Flow, PythonOperator

            with Flow("slow_cli", run_timeout=dt.timedelta(seconds=1)) as slow:
                nap = PythonOperator(task_id="nap", python_callable=lambda: time.sleep(3))
                after = PythonOperator(task_id="after", python_callable=lambda: "never")
                nap >> after
            """
        )
    )
    env = {"DUCTWORK_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    ran = CliRunner().invoke(cli, ["run", str(flow_file)], env=env, catch_exceptions=False)
    assert ran.exit_code == 1, ran.output
    out = " ".join(ran.output.split())
    assert "failed (the run timed out: it ran longer than its run_timeout (0:00:01))" in out
    assert "cancelled by run timeout" in out
    listed = CliRunner().invoke(cli, ["runs", "list", "slow_cli", "--json"], env=env, catch_exceptions=False)
    run_id = json.loads(listed.output)["runs"][0]["run_id"]
    shown = CliRunner().invoke(cli, ["runs", "show", "slow_cli", run_id, "--json"], env=env, catch_exceptions=False)
    record = json.loads(shown.output)
    assert record["state"] == "failed"
    assert record["reason"] == "the run timed out: it ran longer than its run_timeout (0:00:01)"
    assert record["tasks"] == {
        "nap": {"state": "failed", "try_number": 1, "error": record["tasks"]["nap"].get("error")},
        "after": {"state": "skipped", "try_number": 0},
    }
    assert "cancelled by run timeout" in record["tasks"]["nap"]["error"]


# --- under a real scheduler process ----------------------------------------------------------
class Env:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.marks = tmp / "marks"
        self.vars = {
            **os.environ,
            "DUCTWORK_HOME": str(tmp / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(tmp / "flows"),
            "DUCTWORK_DATABASE_URL": f"sqlite:///{tmp / 'ductwork.db'}",
            "RUN_TIMEOUT_MARKS": str(self.marks),
            "PYTHONUNBUFFERED": "1",
        }

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ductwork.cli", *args], env=self.vars, capture_output=True, text=True, timeout=120
        )

    def json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)


def _wait(what: str, check: Callable[[], Any], timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _gone(pid: int) -> bool:
    """Whether the process has ended (a zombie waiting to be reaped counts as ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return True
    return fields[0] in ("Z", "X")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("run-timeout")
    e = Env(tmp)
    (tmp / "flows").mkdir()
    (tmp / "flows" / "slow.py").write_text(FLOW)
    (tmp / "flows" / "af_slow.py").write_text(DAG_FILE)
    e.marks.mkdir()
    with (tmp / "scheduler.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ductwork.cli", "scheduler", "--workers", "1", "--poll-interval", "0.2"],
            env=e.vars,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield e
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@contextlib.contextmanager
def _browser(env: Env) -> Iterator[Any]:
    """A signed-in viewer of the web UI and REST API on the scheduler's database."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Starlette's note about its HTTP client, as in tests/web
        from fastapi.testclient import TestClient

    from ductwork.api.app import create_app
    from ductwork.services import accounts
    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine
    from tests.web.conftest import login

    url = env.vars["DUCTWORK_DATABASE_URL"]
    engine = create_engine(url)
    accounts.create_user(engine, "timeout-viewer", "correct-horse-9", "viewer")
    try:
        with TestClient(create_app(Settings(home=env.tmp / "home", database_url=url), engine)) as client:
            login(client, "timeout-viewer", "correct-horse-9")
            yield client
    finally:
        engine.dispose()


def _run_ends(env: Env, flow_id: str) -> dict[str, Any]:
    run = env.json("trigger", flow_id)
    return _wait(
        f"run {run['run_id']} of {flow_id} to end",
        lambda: (shown := env.json("runs", "show", flow_id, run["run_id"]))["state"] in ("success", "failed") and shown,
    )


def _warm_up(env: Env, flow_id: str) -> None:
    """A run of a flow of the same file without a timeout first, so that the one worker has
    the file imported: on a loaded machine starting a worker alone can take the 2 s."""
    assert _run_ends(env, f"{flow_id}_warm_up")["state"] == "success"


def test_the_scheduler_fails_a_run_past_its_timeout_and_stops_its_try(env: Env) -> None:
    _warm_up(env, "slow")
    shown = _run_ends(env, "slow")
    assert shown["state"] == "failed"
    assert shown["reason"] == REASON
    assert {t: s["state"] for t, s in shown["tasks"].items()} == {
        "first": "success",
        "nap": "failed",
        "after": "skipped",
    }
    # The try was stopped, not left running in its worker; the task after it never ran.
    pid = int((env.marks / "nap.pid").read_text())
    _wait("the timed-out try's worker to stop", lambda: _gone(pid), timeout=60)
    assert not (env.marks / "after.ran").exists()
    # Why, in `ductwork runs show` and in the run's events (the UI's source).
    text = env.cli("runs", "show", "slow", shown["run_id"]).stdout
    assert f"failed: {REASON}" in " ".join(text.split())
    with _browser(env) as browser:
        events = browser.get(f"/api/v1/flows/slow/runs/{shown['run_id']}/events").json()
        assert [e["reason"] for e in events if e["task_id"] is None and e["new"] == "failed"] == [REASON]
        assert [(e["new"], e["reason"]) for e in events if e["task_id"] == "nap"][-1] == (
            "failed",
            "cancelled by run timeout",
        )
        tries = browser.get(f"/api/v1/flows/slow/runs/{shown['run_id']}/tasks/nap/tries").json()
        assert [(t["state"], t["error"]) for t in tries] == [("failed", "cancelled by run timeout")]
        page = browser.get(f"/flows/slow/runs/{shown['run_id']}/graph").text
        assert REASON in page


def test_an_airflow_dag_with_dagrun_timeout_behaves_the_same(env: Env) -> None:
    _warm_up(env, "af_slow")
    shown = _run_ends(env, "af_slow")
    assert shown["state"] == "failed"
    assert shown["reason"] == REASON
    assert {t: s["state"] for t, s in shown["tasks"].items()} == {"nap": "failed", "after": "skipped"}
    pid = int((env.marks / "af_nap.pid").read_text())
    _wait("the timed-out bash command to stop", lambda: _gone(pid), timeout=60)
    assert not (env.marks / "af_after.ran").exists()
