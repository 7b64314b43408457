"""An in-process run (``ductwork run``) killed with SIGKILL leaves a correct record.

The run records its steps in the database by time (many tries per transaction) and journals
each try's start and end; the next in-process run on the same home reads the dead run's
journal, records what it had not, marks the try that was running failed, and ends the run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from ductwork.store.repo import tasks as task_repo
from ductwork_process import process_env
from tests.conftest import Cli

FLOW = """
import time
from pathlib import Path

from ductwork import Flow, PythonOperator

MARK = Path(__file__).with_name("started")


def quick(**_):
    return None


def hang(**_):
    MARK.write_text("c")
    time.sleep(120)


with Flow("killed") as flow:
    steps = [PythonOperator(task_id=f"q{i}", python_callable=quick) for i in range(30)]
    for up, down in zip(steps, steps[1:]):
        up >> down
    steps[-1] >> PythonOperator(task_id="c", python_callable=hang) >> PythonOperator(task_id="d", python_callable=quick)

with Flow("other") as other:
    PythonOperator(task_id="only", python_callable=quick)
"""


def test_a_killed_run_is_recorded_by_the_next_run(cli: Cli, tmp_path: Path) -> None:
    flow_file = tmp_path / "killed_flow.py"
    flow_file.write_text(FLOW)
    ductwork = [sys.executable, "-c", "from ductwork.cli.main import main; main()"]
    proc = subprocess.Popen(
        [*ductwork, "run", f"{flow_file}:killed", "--workers", "1", "--no-progress"],
        cwd=tmp_path,
        env=process_env({}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "task c never started"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    journal = Path(os.environ["DUCTWORK_HOME"]) / "journal" / "local"
    assert list(journal.glob("*.journal")), "the killed run left no journal"

    ran = cli("run", f"{flow_file}:other", "--no-progress")
    assert ran.exit_code == 0, ran.output

    runs = {r["flow_id"]: r for r in json.loads(cli("runs", "list", "--json").output)["runs"]}
    assert runs["other"]["state"] == "success"
    killed = runs["killed"]
    assert killed["state"] == "failed"
    states = json.loads(cli("tasks", "state", "killed", killed["run_id"], "--json").output)
    assert {t: s["state"] for t, s in states.items() if t.startswith("q")} == {f"q{i}": "success" for i in range(30)}
    assert states["c"]["state"] == "failed"  # it was running when its process died
    assert states["d"]["state"] == "none"  # never started

    engine = create_engine(f"sqlite:///{Path(os.environ['DUCTWORK_HOME']) / 'ductwork.db'}")
    try:
        with read_transaction(engine) as conn:
            pk = run_repo.run_pks(conn, [f"killed/{killed['run_id']}"])[f"killed/{killed['run_id']}"]
            tries = {t.task_id: t for t in task_repo.list_tries(conn, pk)}
    finally:
        engine.dispose()
    assert set(tries) == {*(f"q{i}" for i in range(30)), "c"}
    for attempt in tries.values():  # every try that ran has its start and its end
        assert attempt.start_date is not None and attempt.end_date is not None, attempt
        assert attempt.start_date <= attempt.end_date, attempt
    assert f"(pid {proc.pid}) died" in (tries["c"].error or "")
    assert not list(journal.glob("*.journal")), "the dead run's journal was kept after it was recorded"

    # Its log ends at its start; `tasks logs` says how the try ended, which the log cannot (it
    # printed the "starting" line alone). A try whose log has its own traceback gets no such line.
    shown = cli("tasks", "logs", "killed", killed["run_id"], "c")
    assert shown.exit_code == 0, shown.output
    assert shown.output.rstrip().endswith(f"(try 1 of c ended failed: {tries['c'].error})"), shown.output
    assert "(try 1 of q0 ended" not in cli("tasks", "logs", "killed", killed["run_id"], "q0").output
    (tmp_path / "fails.py").write_text(FAILS)
    assert cli("run", "fails.py", "--no-progress").exit_code == 1
    failed_run = json.loads(cli("runs", "list", "fails", "--json").output)["runs"][0]["run_id"]
    own = cli("tasks", "logs", "fails", failed_run, "boom")
    assert "ValueError: no such partition" in own.output and "(try 1 of boom ended" not in own.output, own.output


FAILS = """
from ductwork import Flow, PythonOperator


def boom():
    raise ValueError("no such partition")


with Flow("fails") as flow:
    PythonOperator(task_id="boom", python_callable=boom)
"""


STOPPABLE = """
from pathlib import Path

from ductwork import BashOperator, Flow, PythonOperator

HERE = Path(__file__).parent


def note(name, **_):
    with open(HERE / "ran.txt", "a") as fh:
        fh.write(name + "\\n")


with Flow("stoppable") as flow:
    first = PythonOperator(task_id="a", python_callable=note, op_args=["a"])
    long = BashOperator(task_id="b", bash_command=f"touch {HERE}/started; sleep 30; echo b >> {HERE}/ran.txt")
    last = PythonOperator(task_id="c", python_callable=note, op_args=["c"])
    first >> long >> last
"""


def _start_run(
    tmp_path: Path, name: str, flow: str, *args: str, started: tuple[str, ...] = ("started",), restore_sigint: bool
) -> subprocess.Popen[bytes]:
    """``ductwork run`` of ``flow`` (written to ``NAME.py``) in its own process, once each of the
    ``started`` files exists (its tasks write them). ``restore_sigint``: SIGINT as a terminal
    gives it (a test runner may have it ignored)."""
    (tmp_path / f"{name}.py").write_text(flow)
    prefix = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); " if restore_sigint else ""
    ductwork = [sys.executable, "-c", f"{prefix}from ductwork.cli.main import main; main()"]
    proc = subprocess.Popen(
        [*ductwork, "run", f"{tmp_path / name}.py:{name}", *args, "--no-progress"],
        cwd=tmp_path,
        env=process_env({}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not all((tmp_path / file).exists() for file in started):
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, f"the tasks writing {started} never started"
        time.sleep(0.02)
    return proc


def _start_stoppable(tmp_path: Path, *, restore_sigint: bool = False) -> subprocess.Popen[bytes]:
    return _start_run(tmp_path, "stoppable", STOPPABLE, restore_sigint=restore_sigint)


def _sleep_left(tmp_path: Path) -> bool:
    found = subprocess.run(["pgrep", "-f", f"echo b >> {tmp_path}/ran.txt"], capture_output=True, check=False)
    return found.returncode == 0


def test_a_run_cancelled_from_outside_stops_its_command_and_stays_cancelled(cli: Cli, tmp_path: Path) -> None:
    """It ran its remaining tasks and recorded the run success over the cancel."""
    proc = _start_stoppable(tmp_path)
    try:
        run_id = json.loads(cli("runs", "list", "--json").output)["runs"][0]["run_id"]
        refused = cli("tasks", "mark", "stoppable", run_id, "c", "--state", "skipped")
        assert refused.exit_code != 0 and "in its own process" in refused.output
        assert cli("runs", "cancel", "stoppable", run_id).exit_code == 0
        assert proc.wait(timeout=30) == 1
    finally:
        proc.kill()
    assert proc.stderr is not None and "from outside" in proc.stderr.read().decode()
    time.sleep(0.5)
    assert (tmp_path / "ran.txt").read_text().split() == ["a"]  # neither b's command nor c went on
    assert not _sleep_left(tmp_path)
    states = {t: s["state"] for t, s in json.loads(cli("tasks", "state", "stoppable", run_id, "--json").output).items()}
    # The cancel wins over what the command had not recorded yet (c skipped, not upstream_failed);
    # a and b keep what was recorded when it came: a success, b running (then failed by the
    # cancel), or not yet (then skipped by it).
    assert states["c"] == "skipped" and states["a"] in ("success", "skipped"), states
    assert states["b"] in ("failed", "skipped"), states
    assert json.loads(cli("runs", "list", "--json").output)["runs"][0]["state"] == "failed"


def test_sigterm_stops_the_command_its_task_started_and_records_the_run_failed(cli: Cli, tmp_path: Path) -> None:
    """By default SIGTERM ended Python at once: the bash command ran on and the run stayed running."""
    proc = _start_stoppable(tmp_path)
    try:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
    finally:
        proc.kill()
    time.sleep(0.5)
    assert not _sleep_left(tmp_path)
    run = json.loads(cli("runs", "list", "--json").output)["runs"][0]
    assert run["state"] == "failed"
    states = json.loads(cli("tasks", "state", "stoppable", run["run_id"], "--json").output)
    assert states["c"]["state"] != "success"
    cleared = cli("tasks", "clear", "stoppable", run["run_id"], "b")  # ended: a scheduler may run it again
    assert cleared.exit_code == 0, cleared.output


def test_a_try_stopped_by_sigterm_keeps_its_real_start(cli: Cli, tmp_path: Path) -> None:
    """The stopped try was recorded with a duration of 0.00s: its task's start was written over
    with the stop's time (the try running in the command's own thread lost its start when the
    signal unwound it)."""
    import os

    from ductwork.store.engine import create_engine, read_transaction
    from ductwork.store.repo import runs as run_repo
    from ductwork.store.repo import tasks as task_repo

    proc = _start_stoppable(tmp_path)
    try:
        time.sleep(1.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
    finally:
        proc.kill()
    run = json.loads(cli("runs", "list", "--json").output)["runs"][0]
    engine = create_engine(f"sqlite:///{Path(os.environ['DUCTWORK_HOME']) / 'ductwork.db'}")
    try:
        with read_transaction(engine) as conn:
            record = run_repo.get_run(conn, "stoppable", run["run_id"])
            assert record is not None
            instance = task_repo.get_task_instance(conn, record.pk, "b")
            (attempt,) = task_repo.list_tries(conn, record.pk, "b")
    finally:
        engine.dispose()
    assert instance is not None and instance.start_date is not None and instance.end_date is not None
    assert (instance.end_date - instance.start_date).total_seconds() >= 1.4, instance
    assert attempt.start_date == instance.start_date and attempt.state.value == "failed"


def test_sigkill_stops_the_command_its_task_started_with_the_run(cli: Cli, tmp_path: Path) -> None:
    """A run killed with SIGKILL stops nothing itself: b's command (in a session of its own, so
    that it can be stopped with its children) ran on after the run was recorded failed, and
    wrote to ``ran.txt`` 30 s later. The command's children go too (``sleep`` here)."""
    proc = _start_stoppable(tmp_path)
    try:
        proc.kill()
        proc.wait(timeout=30)
    finally:
        proc.kill()
    deadline = time.monotonic() + 20
    while _sleep_left(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sleep_left(tmp_path)
    found = subprocess.run(["pgrep", "-f", "sleep 30$"], capture_output=True, text=True, check=False)
    for pid in found.stdout.split():
        assert str(tmp_path) not in Path(f"/proc/{pid}/cwd").resolve().as_posix(), "b's sleep ran on"


KBI = """
from ductwork import Flow, PythonOperator


def boom():
    raise KeyboardInterrupt("raised by the task")


with Flow("kbi") as flow:
    a = PythonOperator(task_id="a", python_callable=boom)
    b = PythonOperator(task_id="b", python_callable=lambda: "ran", trigger_rule="all_done")
    a >> b
"""


def test_a_keyboard_interrupt_the_task_raises_fails_the_task_and_the_run_goes_on(cli: Cli, tmp_path: Path) -> None:
    """Only a Ctrl-C the command received stops it; the task's own was taken for one ("Aborted!")."""
    (tmp_path / "kbi.py").write_text(KBI)
    result = cli("run", f"{tmp_path / 'kbi.py'}:kbi", "--no-progress", "--json")
    assert result.exit_code == 0, result.output
    tasks = json.loads(result.output)["tasks"]
    assert tasks["a"]["state"] == "failed" and tasks["b"]["state"] == "success"


def test_ctrl_c_still_stops_the_command_and_records_the_run_failed(cli: Cli, tmp_path: Path) -> None:
    proc = _start_stoppable(tmp_path, restore_sigint=True)
    try:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130  # as a shell reports Ctrl-C; it was 1, as a failed run
    finally:
        proc.kill()
    assert proc.stderr is not None
    said = proc.stderr.read().decode()
    assert "interrupted (Ctrl-C): the run is recorded failed" in said and "Aborted" not in said
    time.sleep(0.5)
    assert not _sleep_left(tmp_path)
    run = json.loads(cli("runs", "list", "--json").output)["runs"][0]
    assert run["state"] == "failed"
    # The try stopped is recorded with its start, its end and why (its start had not reached
    # the run loop: it was recorded queued, then failed under a try that never appeared).
    states = json.loads(cli("tasks", "state", "stoppable", run["run_id"], "--json").output)
    assert {t: s["state"] for t, s in states.items()} == {
        "a": "success",
        "b": "failed",
        "c": "skipped",
    }  # as `runs cancel` leaves it
    assert "interrupted (Ctrl-C)" in states["b"]["error"]


WIDE = """
import os
import time
from pathlib import Path

from ductwork import Flow, PythonOperator

HERE = Path(__file__).parent


def wait(i, **_):
    (HERE / f"started.{i}").touch()
    time.sleep(60)


with Flow("wide") as flow:
    for i in range(6):
        PythonOperator(task_id=f"t{i}", python_callable=wait, op_args=[i])
"""


def test_tasks_a_killed_run_never_started_are_not_given_made_up_tries(cli: Cli, tmp_path: Path) -> None:
    """They were recorded failed with a try that started and ended at the recovery."""
    (tmp_path / "wide.py").write_text(WIDE)
    ductwork = [sys.executable, "-c", "from ductwork.cli.main import main; main()"]
    proc = subprocess.Popen(
        [*ductwork, "run", f"{tmp_path / 'wide.py'}:wide", "--workers", "2", "--no-progress"],
        cwd=tmp_path,
        env=process_env({}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("started.*"))) < 2:
            assert time.monotonic() < deadline, "the first two tasks never started"
            time.sleep(0.05)
        time.sleep(0.7)  # recorded as running
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    (tmp_path / "other.py").write_text(FLOW)
    assert cli("run", f"{tmp_path / 'other.py'}:other", "--no-progress").exit_code == 0
    run = next(r for r in json.loads(cli("runs", "list", "--json").output)["runs"] if r["flow_id"] == "wide")
    assert run["state"] == "failed"
    states = json.loads(cli("tasks", "state", "wide", run["run_id"], "--json").output)
    started = {f"t{p.name.split('.')[1]}" for p in tmp_path.glob("started.*")}
    assert all(states[t]["state"] == "failed" for t in states)
    engine = create_engine(f"sqlite:///{Path(os.environ['DUCTWORK_HOME']) / 'ductwork.db'}")
    try:
        with read_transaction(engine) as conn:
            pk = run_repo.run_pks(conn, [f"wide/{run['run_id']}"])[f"wide/{run['run_id']}"]
            tried = {t.task_id for t in task_repo.list_tries(conn, pk)}
    finally:
        engine.dispose()
    assert tried == started


QUEUED = """
from pathlib import Path

from ductwork import BashOperator, Flow, PythonOperator

HERE = Path(__file__).parent


def note(name, **_):
    with open(HERE / "ran.txt", "a") as fh:
        fh.write(name + "\\n")


with Flow("queued") as flow:
    a = BashOperator(task_id="a", bash_command=f"touch {HERE}/started; sleep 30")
    x = PythonOperator(task_id="x", python_callable=note, op_args=["x"])
    e = PythonOperator(task_id="e", python_callable=note, op_args=["e"])
    a >> e
"""


def test_ctrl_c_records_a_task_waiting_for_a_worker_as_not_started(cli: Cli, tmp_path: Path) -> None:
    """With one worker, x waited behind a; after Ctrl-C it was recorded failed, under a try of
    0.00s that never ran ("interrupted"), where a task that never started is skipped."""
    proc = _start_run(tmp_path, "queued", QUEUED, "--workers", "1", restore_sigint=True)
    try:
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        proc.kill()
    assert not (tmp_path / "ran.txt").exists(), "a task ran after Ctrl-C"
    run_id = json.loads(cli("runs", "list", "--json").output)["runs"][0]["run_id"]
    states = json.loads(cli("tasks", "state", "queued", run_id, "--json").output)
    assert {t: s["state"] for t, s in states.items()} == {"a": "failed", "x": "skipped", "e": "skipped"}
    engine = create_engine(f"sqlite:///{Path(os.environ['DUCTWORK_HOME']) / 'ductwork.db'}")
    try:
        with read_transaction(engine) as conn:
            pk = run_repo.run_pks(conn, [f"queued/{run_id}"])[f"queued/{run_id}"]
            assert [t.task_id for t in task_repo.list_tries(conn, pk)] == ["a"]  # x has no try: it never ran
    finally:
        engine.dispose()


TWO = """
from pathlib import Path

from ductwork import BashOperator, Flow

HERE = Path(__file__).parent

with Flow("two") as flow:
    BashOperator(task_id="b", bash_command=f"touch {HERE}/b-started; sleep 30")
    BashOperator(task_id="c", bash_command=f"touch {HERE}/c-started; sleep 30")
"""


def test_ctrl_c_with_two_tries_running_keeps_their_ends_in_their_logs(cli: Cli, tmp_path: Path) -> None:
    """The try running in a second thread logged its stop ("c failed: TryInterrupted ...", with
    a traceback) after the logs' routing had ended: on the terminal, not in its log."""
    proc = _start_run(tmp_path, "two", TWO, "--workers", "2", started=("b-started", "c-started"), restore_sigint=True)
    try:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        proc.kill()
    assert proc.stderr is not None
    said = proc.stderr.read().decode()
    assert "Traceback" not in said and "TryInterrupted" not in said, said
    assert "interrupted (Ctrl-C): the run is recorded failed" in said
