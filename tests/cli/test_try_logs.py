"""The logs of an in-process run's tries, as ``ductwork tasks logs`` shows them (ADR 0018): short
tries share one file per run, each reads back alone, and a long try is followed while it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ductwork_process import process_env
from tests.conftest import Cli

SHORT = """
from ductwork import Flow, PythonOperator


def say(name, **_):
    print(f"hello from {name}")


with Flow("short") as flow:
    for i in range(20):
        PythonOperator(task_id=f"t{i}", python_callable=say, op_kwargs={"name": f"t{i}"})
"""

LONG = """
import time
from pathlib import Path

from ductwork import Flow, PythonOperator

GO = Path(__file__).with_name("go")


def slow(**_):
    print("first line", flush=True)
    deadline = time.monotonic() + 120
    while not GO.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    print("last line")


with Flow("long") as flow:
    for task_id in TASKS:
        PythonOperator(task_id=task_id, python_callable=slow)
"""

DUCTWORK = [sys.executable, "-c", "from ductwork.cli.main import main; main()"]


def test_short_tries_share_one_log_file_and_each_reads_back_alone(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "short.py").write_text(SHORT)
    ran = cli("run", "short.py", "--no-progress")
    assert ran.exit_code == 0, ran.output
    run_id = json.loads(cli("runs", "list", "short", "--json").output)["runs"][0]["run_id"]
    folders = list((Path(os.environ["DUCTWORK_HOME"]) / "logs" / "short").iterdir())
    assert [p.name for p in folders[0].iterdir()] == ["_tries.log"]  # one file, not twenty
    for i in range(20):
        shown = cli("tasks", "logs", "short", run_id, f"t{i}")
        assert shown.exit_code == 0, shown.output
        assert f"hello from t{i}\n" in shown.output
        assert shown.output.count("hello from") == 1, shown.output  # its own lines only
        assert f"t{i} succeeded" in shown.output


def test_run_json_says_where_each_try_s_log_is(cli: Cli, tmp_path: Path) -> None:
    """``ductwork run --json`` names a file that exists for every try: a short try's log is a
    range of the run's pack, which reads back as that try's text alone."""
    (tmp_path / "short.py").write_text(SHORT)
    ran = cli("run", "short.py", "--no-progress", "--json")
    assert ran.exit_code == 0, ran.output
    tasks = json.loads(ran.output)["tasks"]
    assert len(tasks) == 20
    for task_id, task in tasks.items():
        (attempt,) = task["tries"]
        path, (offset, size) = Path(attempt["log"]), attempt["log_range"]
        assert path.name == "_tries.log"
        with path.open("rb") as pack:
            pack.seek(offset)
            text = pack.read(size).decode()
        assert f"hello from {task_id}\n" in text and text.count("hello from") == 1, text


@pytest.mark.parametrize("tasks", [["slow"], ["slow", "beside"]], ids=["alone", "in-threads"])
def test_a_long_try_of_an_in_process_run_is_followed_while_it_runs(cli: Cli, tmp_path: Path, tasks: list[str]) -> None:
    """A try alone runs in the run loop's own thread, two run in the run's threads: either way
    the record shows it running, and its log is followed, while it runs."""
    (tmp_path / "long.py").write_text(f"TASKS = {tasks!r}\n" + LONG)
    run = subprocess.Popen(
        [*DUCTWORK, "run", "long.py", "--no-progress"],
        cwd=tmp_path,
        env=process_env({}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    follow = None
    try:
        deadline = time.monotonic() + 60
        while not (runs := _runs_of(cli, "long")):
            assert run.poll() is None and time.monotonic() < deadline, "the run never started"
            time.sleep(0.1)
        while (
            json.loads(cli("tasks", "state", "long", runs[0]["run_id"], "--json").output)["slow"]["state"] != "running"
        ):
            assert run.poll() is None and time.monotonic() < deadline, "the try never started"
            time.sleep(0.1)
        follow = subprocess.Popen(
            [*DUCTWORK, "tasks", "logs", "long", runs[0]["run_id"], "slow", "--follow"],
            cwd=tmp_path,
            env=process_env({}),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert follow.stdout is not None
        seen = ""
        while "first line" not in seen:  # shown while the try runs (it waits for "go")
            line = follow.stdout.readline()
            assert line, f"the log ended before the try did: {seen!r} {follow.stderr.read() if follow.stderr else ''}"
            seen += line
        assert not (tmp_path / "go").exists() and run.poll() is None
        (tmp_path / "go").write_text("")
        rest, said = follow.communicate(timeout=60)
        assert follow.returncode == 0
        assert "last line" in rest and "slow succeeded" in rest
        assert "(try 1 of slow ended success)" in said  # how it ended, even when no last line was written
        assert run.wait(timeout=60) == 0
    finally:
        for proc in (run, follow):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def test_a_deleted_log_is_said_to_be_missing(cli: Cli, tmp_path: Path) -> None:
    """A try whose log file is gone (deleted by hand, a log cleaner, a lost disk) is shown as
    missing, naming the file: not as an empty log, which reads as "the task printed nothing"."""
    (tmp_path / "short.py").write_text(SHORT)
    ran = cli("run", "short.py", "--no-progress")
    assert ran.exit_code == 0, ran.output
    run_id = json.loads(cli("runs", "list", "short", "--json").output)["runs"][0]["run_id"]
    for folder in (Path(os.environ["DUCTWORK_HOME"]) / "logs" / "short").iterdir():
        for file in folder.iterdir():
            file.unlink()
    shown = cli("tasks", "logs", "short", run_id, "t3")
    assert shown.exit_code == 0, shown.output
    assert "*** no log: " in shown.output and "does not exist" in shown.output, shown.output


TALKATIVE = """
import logging
from ductwork import flow, task

@task
def talk():
    logging.info("root info line")
    logging.getLogger("mylib.client").info("library info line")
    logging.getLogger("mylib.client").debug("library debug line")

@flow
def talkative():
    talk()
"""


def test_a_tasks_info_log_records_reach_its_try_log_and_not_the_commands_output(cli: Cli, tmp_path: Path) -> None:
    """``logging.info(...)`` in a task, or in a library it calls, is in the try's log, as in
    Airflow (Python's root logger stops at WARNING: it was dropped); ``ductwork run`` itself
    prints no more than before."""
    from tests.ductwork_process import ductwork_process

    (tmp_path / "talkative.py").write_text(TALKATIVE)
    env = {"DUCTWORK_HOME": str(tmp_path / "home")}
    ran = ductwork_process("run", "talkative.py", "--no-progress", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "info line" not in ran.stdout + ran.stderr
    run_id = json.loads(cli("runs", "list", "talkative", "--json", env=env).output)["runs"][0]["run_id"]
    shown = cli("tasks", "logs", "talkative", run_id, "talk", env=env).output
    assert "INFO root: root info line" in shown
    assert "INFO mylib.client: library info line" in shown
    assert "library debug line" not in shown


def _runs_of(cli: Cli, flow_id: str) -> list[dict[str, object]]:
    """The flow's runs; none while the run being started has not recorded the flow yet (until
    then ``runs list`` refuses its id as unknown)."""
    listed = cli("runs", "list", flow_id, "--json")
    return json.loads(listed.output)["runs"] if listed.exit_code == 0 else []


def test_a_log_written_on_another_host_says_where_and_which_setting(cli: Cli, tmp_path: Path) -> None:
    """With no remote_log_url, a Celery worker on another host writes a try's log to its own
    disk: the command on this host says so and names the setting, instead of "deleted, or never
    written". A try of this host whose file is gone is said as before."""
    import sqlalchemy as sa

    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.tables import task_tries

    (tmp_path / "short.py").write_text(SHORT)
    ran = cli("run", "short.py", "--no-progress")
    assert ran.exit_code == 0, ran.output
    run_id = json.loads(cli("runs", "list", "short", "--json").output)["runs"][0]["run_id"]
    for folder in (Path(os.environ["DUCTWORK_HOME"]) / "logs" / "short").iterdir():
        for file in folder.iterdir():
            file.unlink()
    engine = create_engine(Settings.load().db_url)
    try:
        with transaction(engine) as conn:
            conn.execute(sa.update(task_tries).where(task_tries.c.task_id == "t3").values(hostname="w1@gpu-host-7"))
    finally:
        engine.dispose()
    shown = cli("tasks", "logs", "short", run_id, "t3")
    assert shown.exit_code == 0, shown.output
    assert "*** no log here: " in shown.output and "try 1 ran on w1@gpu-host-7" in shown.output, shown.output
    assert "Set remote_log_url (DUCTWORK_REMOTE_LOG_URL" in shown.output
    local = cli("tasks", "logs", "short", run_id, "t4")
    assert "does not exist (deleted, or never written)" in local.output, local.output


def test_a_log_left_in_a_deleted_try_pod_says_it_went_with_the_pod(cli: Cli, tmp_path: Path) -> None:
    """A Kubernetes try pod is deleted once its try has ended, and a log written to its disk (no
    remote_log_url) with it. The command said the pod "wrote its log to its own disk" and to set
    remote_log_url on "the workers" as for a Celery host, whose disk is still there to look at."""
    import sqlalchemy as sa

    from ductwork.settings import Settings
    from ductwork.store.engine import create_engine, transaction
    from ductwork.store.tables import task_tries

    (tmp_path / "short.py").write_text(SHORT)
    ran = cli("run", "short.py", "--no-progress")
    assert ran.exit_code == 0, ran.output
    run_id = json.loads(cli("runs", "list", "short", "--json").output)["runs"][0]["run_id"]
    for folder in (Path(os.environ["DUCTWORK_HOME"]) / "logs" / "short").iterdir():
        for file in folder.iterdir():
            file.unlink()
    engine = create_engine(Settings.load().db_url)
    try:
        with transaction(engine) as conn:
            conn.execute(
                sa.update(task_tries).where(task_tries.c.task_id == "t3").values(hostname="pod-dw-t3-1-0a1b2c3d4e")
            )
    finally:
        engine.dispose()
    shown = cli("tasks", "logs", "short", run_id, "t3")
    assert shown.exit_code == 0, shown.output
    assert "try 1 ran in the pod pod-dw-t3-1-0a1b2c3d4e" in shown.output, shown.output
    assert "deleted with the pod" in shown.output and "Set remote_log_url (DUCTWORK_REMOTE_LOG_URL" in shown.output
    assert "workers" not in shown.output, shown.output


def test_a_celery_scheduler_without_a_log_store_says_where_logs_will_be(tmp_path: Path) -> None:
    """The deployment guide's remote_log_url, left out: the scheduler says at start that the
    workers' try logs stay on their disks, and which setting to set (its database is down here:
    it says so and gives up after --start-wait)."""
    from ductwork_process import ductwork_process

    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path),
        "DUCTWORK_DATABASE_URL": "postgresql+psycopg://ductwork@127.0.0.1:1/nowhere",
        "DUCTWORK_EXECUTOR": "celery",
        "DUCTWORK_BROKER_URL": "redis://127.0.0.1:1/0",
    }
    bare = ductwork_process("scheduler", "--start-wait", "0.2", env=env, cwd=tmp_path)
    assert bare.returncode != 0
    assert "note: no remote_log_url: the celery workers write the logs of tries to their own disks" in bare.stderr
    assert "set DUCTWORK_REMOTE_LOG_URL" in bare.stderr, bare.stderr
    shared = ductwork_process(
        "scheduler",
        "--start-wait",
        "0.2",
        env={**env, "DUCTWORK_REMOTE_LOG_URL": f"file://{tmp_path}/logs"},
        cwd=tmp_path,
    )
    assert shared.returncode != 0 and "unreachable" in shared.stdout + shared.stderr
    assert "remote_log_url" not in shared.stderr, shared.stderr


def test_a_kubernetes_scheduler_without_a_log_store_says_the_logs_go_with_the_pods(tmp_path: Path) -> None:
    """Under executor = "kubernetes" each try runs in a pod of its own, deleted once its try has
    ended: a log left on the pod's disk goes with it. The note said the "kubernetes workers"
    kept the logs on their disks, readable "on a host that shares that folder", which no host
    does, and sent users looking for workers and folders that do not exist."""
    from ductwork_process import ductwork_process

    env = {
        "DUCTWORK_HOME": str(tmp_path / "home"),
        "DUCTWORK_FLOWS_FOLDER": str(tmp_path),
        "DUCTWORK_DATABASE_URL": "postgresql+psycopg://ductwork@127.0.0.1:1/nowhere",
        "DUCTWORK_EXECUTOR": "kubernetes",
        "KUBECONFIG": str(tmp_path / "no-kubeconfig"),
    }
    bare = ductwork_process("scheduler", "--start-wait", "0.2", env=env, cwd=tmp_path)
    assert bare.returncode != 0
    note = next(line for line in bare.stderr.splitlines() if line.startswith("note: no remote_log_url"))
    assert "workers" not in note and "shares that folder" not in note, note
    assert "try pod" in note and "deleted" in note, note
    assert "set DUCTWORK_REMOTE_LOG_URL" in note, note


def test_standalone_names_the_executor_it_runs(tmp_path: Path) -> None:
    """``standalone`` runs the executor the settings name: with ``executor = "celery"`` its tries
    go to Celery workers, and its first line says so (it said "4 workers", its unused pool)."""
    import signal

    from private_services import free_port

    flows = tmp_path / "flows"
    flows.mkdir()
    env = process_env(
        {
            "DUCTWORK_HOME": str(tmp_path / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_EXECUTOR": "celery",
            "DUCTWORK_BROKER_URL": "redis://127.0.0.1:1/0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    err = tmp_path / "standalone.err"
    with err.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ductwork.cli", "standalone", "--port", str(free_port())],
            env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=sink, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "note: no remote_log_url" not in err.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = err.read_text().splitlines()
    banner = next(line for line in lines if line.startswith("Ductwork standalone:"))
    assert "executor celery (broker redis://127.0.0.1:1/0)" in banner and "workers" not in banner, banner
    assert any(line.startswith("note: no remote_log_url") for line in lines), lines


ZONED = """
import logging

from ductwork import Flow, PythonOperator


def talk(**_):
    logging.getLogger("etl").warning("rows late")


with Flow("zoned") as flow:
    PythonOperator(task_id="talk", python_callable=talk)
"""


def test_a_try_log_line_carries_the_offset_of_its_time(tmp_path: Path) -> None:
    """A try's log is read beside the scheduler's and other machines' workers': its times carry
    the UTC offset (here New York's, -05:00 in December), the engine's lines and the task's own
    logging records alike. A bare local time named two instants at a change of daylight time."""
    import re

    (tmp_path / "zoned.py").write_text(ZONED)
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home"), "TZ": "America/New_York"})
    ran = subprocess.run(
        [*DUCTWORK, "run", "zoned.py", "--no-progress", "--date", "2026-12-01"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    shown = subprocess.run(
        [*DUCTWORK, "tasks", "logs", "zoned", "manual__2026-12-01T00:00:00+00:00", "talk"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    stamped = [line for line in shown.stdout.splitlines() if line.startswith("[")]
    assert any("INFO ductwork.task: starting talk" in line for line in stamped), shown.stdout
    assert any("WARNING etl: rows late" in line for line in stamped), shown.stdout
    for line in stamped:
        assert re.match(r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}-05:00\] ", line), line
