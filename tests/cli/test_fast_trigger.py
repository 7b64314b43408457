"""``ductwork trigger`` handed to the running scheduler over its local socket (ADR 0023).

The command must do exactly what it did when it wrote the run itself (same run, same output,
same audit entry, same exit status), only sooner; and whenever the scheduler cannot take it,
the command must do it itself, as before. The scheduler is a real ``ductwork scheduler``
process; the commands are real processes of the console script, or ``fast_trigger.attempt``
called here where a test needs to know which path was taken.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ductwork.cli import fast_trigger, scheduler_socket
from ductwork.cli.main import cli as cli_group
from ductwork.settings import Settings
from ductwork.store.engine import create_engine, read_transaction
from ductwork.store.repo import runs as run_repo
from ductwork_process import ductwork_command, ductwork_process, process_env

pytestmark = pytest.mark.skipif(not scheduler_socket.available(), reason="abstract Unix sockets are Linux's")

FLOWS = textwrap.dedent(
    """
    import os, pathlib, time
    from ductwork import Flow, PythonOperator

    def gate():
        path = pathlib.Path(os.environ["DUCTWORK_TEST_GATE"])
        while not path.exists():
            time.sleep(0.01)

    def boom():
        raise RuntimeError("boom")

    with Flow("one") as one:
        PythonOperator(task_id="only", python_callable=lambda: None)

    with Flow("failing") as failing:
        PythonOperator(task_id="explodes", python_callable=boom)

    with Flow("gated") as gated:
        PythonOperator(task_id="waits", python_callable=gate)

    with Flow("chained") as chained:
        PythonOperator(task_id="waits", python_callable=gate) >> PythonOperator(task_id="then", python_callable=print)
    """
)

DUCTWORK = ductwork_command()
"""``python -m ductwork.cli``: the console script's entry (``cli.entry.main``), as
``.venv/bin/ductwork`` runs it."""


@pytest.fixture
def home(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A ``ductwork scheduler`` running on a fresh home; yields the commands' environment."""
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flows.py").write_text(FLOWS)
    env = process_env(
        {
            "DUCTWORK_HOME": str(tmp_path / "home"),
            "DUCTWORK_FLOWS_FOLDER": str(flows),
            "DUCTWORK_TEST_GATE": str(tmp_path / "gate"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = (tmp_path / "scheduler.log").open("wb")
    proc = subprocess.Popen(
        [*DUCTWORK, "scheduler", "--workers", "1"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:
        _wait_listening(str(tmp_path / "home"))
        yield {**env, "TEST_SCHEDULER_PID": str(proc.pid)}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_listening(home: str) -> None:
    address = scheduler_socket.address(scheduler_socket.real_home(home))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(address)
                return
            except OSError:
                time.sleep(0.05)
    raise AssertionError("the scheduler never listened")


def _ductwork(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return ductwork_process(*args, env=env, cwd=cwd)


def _runs(env: dict[str, str], flow_id: str, *, quiet: bool = False) -> list[Any]:
    """The flow's runs; with ``quiet``, none while the database has no tables yet."""
    engine = create_engine(f"sqlite:///{env['DUCTWORK_HOME']}/ductwork.db")
    try:
        with read_transaction(engine) as conn:
            return list(run_repo.list_runs(conn, flow_id=flow_id, limit=100).items)
    except sqlalchemy.exc.OperationalError:
        if quiet:
            return []
        raise
    finally:
        engine.dispose()


def _attempt(env: dict[str, str], *args: str, cwd: str | None = None) -> int | None:
    return fast_trigger.attempt(list(args), env, cwd or os.getcwd())


# --- with a scheduler running ----------------------------------------------------------------


def test_the_scheduler_queues_the_run_and_the_command_shows_it(home: dict[str, str]) -> None:
    assert _attempt(home, "trigger", "one", "--run-id", "through-socket") == 0  # taken by the scheduler
    (run,) = _runs(home, "one")
    assert run.run_id == "through-socket"

    done = _ductwork(home, "trigger", "one", "--run-id", "printed", "--wait")
    assert done.returncode == 0, done.stderr
    assert "run one printed: success" in done.stdout
    assert "only" in done.stdout and "success" in done.stdout.split("only", 1)[1]
    states = {r.run_id: r.state.value for r in _runs(home, "one")}
    assert states["printed"] == "success"


def test_commands_at_the_same_moment_each_queue_their_run(home: dict[str, str]) -> None:
    """A cron line firing many triggers at once: each command gets its own run, and one audit
    entry each."""
    commands = [
        subprocess.Popen(
            [*DUCTWORK, "trigger", "one", "--run-id", f"c{i}"], env=home, stdout=subprocess.PIPE, text=True
        )
        for i in range(8)
    ]
    outputs = [c.communicate(timeout=120)[0] for c in commands]
    assert [c.returncode for c in commands] == [0] * 8
    assert all(f"run one c{i}: queued" in out for i, out in enumerate(outputs))
    assert sorted(r.run_id for r in _runs(home, "one")) == [f"c{i}" for i in range(8)]
    done = _ductwork(home, "audit", "list", "--json")
    entries = json.loads(done.stdout)["entries"]
    assert sorted(e["details"]["run_id"] for e in entries) == [f"c{i}" for i in range(8)]


def test_a_run_that_fails_exits_1_and_says_why(home: dict[str, str]) -> None:
    done = _ductwork(home, "trigger", "failing", "--wait", "--run-id", "f1")
    assert done.returncode == 1
    assert "run failing f1: failed" in done.stdout
    assert "explodes" in done.stdout
    assert "RuntimeError: boom" in done.stdout  # why it failed: the table showed only "failed"


def test_a_wait_that_times_out_exits_3_and_says_the_run_goes_on(home: dict[str, str], tmp_path: Path) -> None:
    """`trigger --wait --timeout N && next_step` must not go on while the run still runs; both
    ways in (handed to the scheduler, and written by the command itself) say the same."""
    for handoff in ("true", "false"):
        env = {**home, "DUCTWORK_TRIGGER_HANDOFF": handoff}
        done = _ductwork(env, "trigger", "gated", "--wait", "--timeout", "0.3", "--run-id", f"t-{handoff}")
        assert done.returncode == 3, (handoff, done.stdout, done.stderr)
        assert f"run gated t-{handoff}: running" in done.stdout or f"run gated t-{handoff}: queued" in done.stdout
        assert "timed out after 0.3s" in done.stderr and "it goes on" in done.stderr
    (tmp_path / "gate").touch()


def test_ctrl_c_while_waiting_exits_130_names_the_run_and_leaves_it_going(home: dict[str, str], tmp_path: Path) -> None:
    """Both ways in ended with a traceback (handed to the scheduler) or click's "Aborted!" and
    exit status 1, as if the run had failed, without saying which run it was."""
    for handoff in ("true", "false"):
        env = {**home, "DUCTWORK_TRIGGER_HANDOFF": handoff}
        proc = subprocess.Popen(
            [*DUCTWORK, "trigger", "gated", "--wait", "--run-id", f"i-{handoff}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 60
        while not any(
            r.run_id == f"i-{handoff}" and r.state.value == "running" for r in _runs(home, "gated", quiet=True)
        ):
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.2)  # into the wait
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, (handoff, out, err)
        assert "Traceback" not in err and "Aborted" not in err
        assert f"stopped waiting (Ctrl-C): run i-{handoff} of gated goes on" in err
        assert f"ductwork runs cancel gated i-{handoff}" in err
    (tmp_path / "gate").touch()
    deadline = time.monotonic() + 60
    while {r.run_id: r.state.value for r in _runs(home, "gated")} != {"i-true": "success", "i-false": "success"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_timeout_without_wait_or_not_a_duration_is_refused_and_queues_nothing(home: dict[str, str]) -> None:
    """`--timeout 5` without `--wait` was ignored (the run queued, the command returned at once);
    `--timeout -1` "timed out after -1s"; `--timeout nan` waited forever."""
    for handoff in ("true", "false"):
        env = {**home, "DUCTWORK_TRIGGER_HANDOFF": handoff}
        for args, says in (
            (["--timeout", "5"], "--timeout applies to --wait"),
            (["--wait", "--timeout", "-1"], "-1.0 is not in the range x>=0"),
            (["--wait", "--timeout", "nan"], "expected a number of seconds, got nan"),
        ):
            done = _ductwork(env, "trigger", "one", *args)
            assert done.returncode == 2, (handoff, args, done.stdout, done.stderr)
            assert says in done.stderr, (handoff, args, done.stderr)
    assert _runs(home, "one", quiet=True) == []


def test_json_output_is_the_runs_record(home: dict[str, str]) -> None:
    done = _ductwork(home, "trigger", "one", "--run-id", "j1", "--json", "-p", "x=1")
    assert done.returncode == 2  # the flow has no parameter x: the command says so itself
    assert "unknown parameter 'x'" in done.stderr
    assert [r.run_id for r in _runs(home, "one")] == []

    done = _ductwork(home, "trigger", "one", "--run-id", "j2", "--json", "--conf", '{"a": 1}')
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert (shown["flow_id"], shown["run_id"], shown["state"]) == ("one", "j2", "queued")


def test_wait_with_json_gives_the_task_states_the_table_shows(home: dict[str, str]) -> None:
    """`trigger --wait --json` gave only the run's record: a script could not tell which task
    failed, though `--wait` "shows its task states" and `runs show --json` gives them."""
    for handoff in ("true", "false"):
        env = {**home, "DUCTWORK_TRIGGER_HANDOFF": handoff}
        done = _ductwork(env, "trigger", "failing", "--wait", "--json", "--run-id", f"w-{handoff}")
        assert done.returncode == 1, (handoff, done.stdout, done.stderr)
        shown = json.loads(done.stdout)
        assert (shown["run_id"], shown["state"]) == (f"w-{handoff}", "failed")
        assert shown["tasks"] == {"explodes": {"state": "failed", "try_number": 1, "error": "RuntimeError: boom"}}
        listed = json.loads(_ductwork(env, "runs", "show", "failing", f"w-{handoff}", "--json").stdout)
        assert shown == listed


def test_logs_follow_of_a_task_not_started_yet_waits_for_its_try(home: dict[str, str], tmp_path: Path) -> None:
    """`trigger` then `tasks logs ... --follow` of a task still waiting for its upstream task
    failed "has not run yet" (exit 2)."""
    assert _ductwork(home, "trigger", "chained", "--run-id", "c1").returncode == 0
    follow = subprocess.Popen(
        [*DUCTWORK, "tasks", "logs", "chained", "c1", "then", "--follow"],
        env=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follow.stderr is not None
    first = follow.stderr.readline()  # what it says first, while `waits` holds `then` back
    assert first == "(waiting for then to start; Ctrl-C to stop)\n", first
    (tmp_path / "gate").touch()
    out, err = follow.communicate(timeout=60)
    assert follow.returncode == 0, (out, err)
    assert "(try 1 of then ended success)" in err, (out, err)
    assert "starting then, try 1" in out


def test_the_audit_entry_is_the_one_the_command_writes_itself(home: dict[str, str], tmp_path: Path) -> None:
    # The wait was `--timeout 1`: under load the scheduler took longer to run the flow, the
    # command exited 3 and the test failed. Each wait now ends on its run's end.
    args = ("trigger", "one", "--run-id", "audited", "--conf", '{"k": "v"}', "-p", "", "--wait", "--timeout", "300")
    assert _attempt(home, *args) is None  # "-p ''" is not NAME=VALUE: the command says so itself
    args = tuple(a for a in args if a not in ("-p", ""))
    assert _attempt(home, *args) == 0
    ours = _audit(home)
    # The same command where no scheduler runs (another home): the command writes it itself
    # and waits in the database, until the run is cancelled there.
    other = {**home, "DUCTWORK_HOME": str(tmp_path / "other-home")}
    waiting = subprocess.Popen([*DUCTWORK, *args], env=other, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _runs(other, "one", quiet=True):
            assert time.monotonic() < deadline and waiting.poll() is None, "the command never queued its run"
            time.sleep(0.05)
        cancelled = _ductwork(other, "runs", "cancel", "one", "audited")
        assert cancelled.returncode == 0, cancelled.stderr
        out, err = waiting.communicate(timeout=120)
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert waiting.returncode == 1, (out, err)  # the run it waited for ended failed (cancelled)
    theirs = _audit(other)
    assert theirs["details"].pop("exit_status") == 1  # type: ignore[attr-defined]
    for key in ("actor", "via", "origin", "action", "target", "details"):
        assert ours[key] == theirs[key], key
    assert ours["details"] == {
        "flow_ref": "one",
        "run_id": "audited",
        "conf_text": '{"k": "v"}',
        "wait": True,
        "timeout": 300.0,
    }


def _audit(env: dict[str, str]) -> dict[str, object]:
    """The audit entry of the trigger (a cancel made to end a wait has its own)."""
    done = _ductwork(env, "audit", "list", "--json")
    assert done.returncode == 0, done.stderr
    (entry,) = [e for e in json.loads(done.stdout)["entries"] if e["action"] != "run.cancel"]
    return dict(entry)


def test_another_flows_folder_or_database_is_left_to_the_command(home: dict[str, str], tmp_path: Path) -> None:
    other_flows = tmp_path / "other-flows"
    other_flows.mkdir()
    assert _attempt({**home, "DUCTWORK_FLOWS_FOLDER": str(other_flows)}, "trigger", "one") is None
    other_db = f"sqlite:///{tmp_path / 'other.db'}"
    assert _attempt({**home, "DUCTWORK_DATABASE_URL": other_db}, "trigger", "one") is None
    assert _attempt(home, "trigger", "no_such_flow") is None  # an error: the command words it
    assert _runs(home, "one") == []


def test_the_handoff_can_be_switched_off(home: dict[str, str], tmp_path: Path) -> None:
    """``trigger_handoff = false`` (environment or ``ductwork.toml``): the command writes the
    run itself although a scheduler listens; a value that is not a boolean is the CLI's error."""
    assert _attempt({**home, "DUCTWORK_TRIGGER_HANDOFF": "false"}, "trigger", "one") is None
    (tmp_path / "ductwork.toml").write_text("[ductwork]\ntrigger_handoff = false\n")
    assert _attempt(home, "trigger", "one", cwd=str(tmp_path)) is None
    done = _ductwork(home, "trigger", "one", "--run-id", "itself", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [r.run_id for r in _runs(home, "one")] == ["itself"]
    done = _ductwork({**home, "DUCTWORK_TRIGGER_HANDOFF": "maybe"}, "trigger", "one")
    assert done.returncode == 2
    assert "trigger_handoff must be true or false" in done.stderr
    (tmp_path / "ductwork.toml").unlink()
    assert _attempt({**home, "DUCTWORK_TRIGGER_HANDOFF": "yes"}, "trigger", "one", "--run-id", "handed") == 0


def test_config_says_where_trigger_puts_its_runs(home: dict[str, str], tmp_path: Path) -> None:
    shown = _ductwork(home, "config")
    assert shown.returncode == 0, shown.stderr
    expected = f"ductwork trigger: handed to the scheduler running for this home (pid {home['TEST_SCHEDULER_PID']})"
    assert expected in shown.stdout
    other = _ductwork({**home, "DUCTWORK_FLOWS_FOLDER": str(tmp_path)}, "config")
    assert "has another flows folder or database" in other.stdout
    off = _ductwork({**home, "DUCTWORK_TRIGGER_HANDOFF": "0"}, "config")
    assert "the command writes its runs itself (trigger_handoff is false)" in off.stdout
    alone = _ductwork({**home, "DUCTWORK_HOME": str(tmp_path / "elsewhere")}, "config")
    assert "no scheduler runs on this machine for this home" in alone.stdout


def test_a_flow_named_by_its_file_is_found_from_the_commands_folder(home: dict[str, str], tmp_path: Path) -> None:
    flows = Path(home["DUCTWORK_FLOWS_FOLDER"])
    assert _attempt(home, "trigger", "flows/flows.py:one", "--run-id", "by-file", cwd=str(flows.parent)) == 0
    assert [r.run_id for r in _runs(home, "one")] == ["by-file"]


def test_the_command_imports_no_database_code_when_the_scheduler_takes_it(home: dict[str, str]) -> None:
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.stderr.write('LOADED ' + ' '.join(sorted("
        "m for m in ('sqlalchemy', 'click', 'ductwork.settings') if m in sys.modules)) + '\\n'))\n"
        "from ductwork.cli.entry import main\n"
        "sys.argv = ['ductwork', 'trigger', 'one', '--run-id', 'light']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], env=home, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "run one light: queued" in done.stdout
    assert "LOADED \n" in done.stderr


def test_the_wait_goes_on_in_the_database_when_the_scheduler_dies(home: dict[str, str], tmp_path: Path) -> None:
    command = subprocess.Popen(
        [*DUCTWORK, "trigger", "gated", "--run-id", "g1", "--wait", "--timeout", "4"],
        env=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not [r for r in _runs(home, "gated", quiet=True) if r.state.value == "running"]:
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)
    os.kill(int(home["TEST_SCHEDULER_PID"]), signal.SIGKILL)
    out, err = command.communicate(timeout=60)
    assert command.returncode == 3, err
    assert "run gated g1: running" in out  # --timeout passed; the run is still recorded as running
    assert "timed out after 4s" in err
    (tmp_path / "gate").touch()


def _a_scheduler_that_dies_before_answering(env: dict[str, str]) -> tuple[socket.socket, list[str]]:
    """A listener on the scheduler's socket that records the asked run as the scheduler does
    (the real command, writing it itself) and then closes without an answer: the moment a
    scheduler killed between its commit and its answer leaves, which no signal can hit on time."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(scheduler_socket.address(scheduler_socket.real_home(env["DUCTWORK_HOME"])))
    listener.listen(1)
    asked: list[str] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request = scheduler_socket.Lines(conn).next()
            asked.append(request["flow"])
            params = request["params"]
            argv = ["trigger", request["flow"]] + (["--run-id", params["run_id"]] if params["run_id"] else [])
            done = _ductwork({**env, "DUCTWORK_TRIGGER_HANDOFF": "false"}, *argv)
            assert done.returncode == 0, done.stderr

    import threading

    threading.Thread(target=serve, daemon=True).start()
    return listener, asked


@pytest.mark.parametrize("wait", [False, True])
def test_a_run_named_by_run_id_is_found_when_the_scheduler_dies_before_answering(tmp_path: Path, wait: bool) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flows.py").write_text(FLOWS)
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_FLOWS_FOLDER": str(flows)})
    listener, asked = _a_scheduler_that_dies_before_answering(env)
    with listener:
        done = _ductwork(
            env, "trigger", "one", "--run-id", "lost-answer", *(["--wait", "--timeout", "1"] if wait else [])
        )
    assert asked == ["one"]
    assert "run one lost-answer: queued" in done.stdout, done.stderr
    if wait:  # no scheduler runs it: the wait in the database times out, and says so
        assert done.returncode == 3, done.stderr
        assert "timed out after 1s" in done.stderr
    else:
        assert done.returncode == 0, done.stderr
    assert [r.run_id for r in _runs(env, "one")] == ["lost-answer"]  # recorded once, not again by the command


def test_a_run_without_run_id_is_not_guessed_when_the_scheduler_dies_before_answering(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flows.py").write_text(FLOWS)
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_FLOWS_FOLDER": str(flows)})
    listener, _ = _a_scheduler_that_dies_before_answering(env)
    with listener:
        done = _ductwork(env, "trigger", "one")
    assert done.returncode == 2
    assert "the scheduler stopped while taking this trigger" in done.stderr
    assert len(_runs(env, "one")) == 1  # the one the scheduler recorded; the command wrote none


# --- without a scheduler ---------------------------------------------------------------------


def test_without_a_scheduler_the_command_writes_the_run_itself(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "flows.py").write_text(FLOWS)
    env = process_env({"DUCTWORK_HOME": str(tmp_path / "home"), "DUCTWORK_FLOWS_FOLDER": str(flows)})
    assert _attempt(env, "trigger", "one") is None
    done = _ductwork(env, "trigger", "one", "--run-id", "itself")
    assert done.returncode == 0, done.stderr
    assert "run one itself: queued" in done.stdout
    assert [r.run_id for r in _runs(env, "one")] == ["itself"]


# --- reading the command line as click does ----------------------------------------------------

VALUES = st.sampled_from(
    ["one", "a=1", "b=2=3", '{"a": 1}', "2024-01-31", "1.5", "nan", "-x", "-", "", "x y", "--wait", "flows/a.py:one"]
) | st.text(max_size=5)
STRAY = st.sampled_from(["--", "-", "", "-x", "--waits", "--wait=1", "-p=a", "--help", "-h", "--version", "extra"])


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    """Mostly ``trigger`` command lines, in every form click reads, some of them spoiled."""
    argv: list[str] = []
    for _ in range(draw(st.integers(0, 2))):
        option, value = draw(st.sampled_from(["--home", "--config", "--flows-folder"])), draw(VALUES)
        argv += draw(st.sampled_from([[option, value], [f"{option}={value}"]]))
    argv.append(draw(st.sampled_from(["trigger", "trigger", "trigger", "runs"])))
    parts: list[list[str]] = [[draw(VALUES)]]
    for _ in range(draw(st.integers(0, 5))):
        option = draw(
            st.sampled_from(["--param", "-p", "--conf", "--date", "--run-id", "--timeout", "--wait", "--json"])
        )
        if option in ("--wait", "--json"):
            parts.append([option])
            continue
        value = draw(VALUES)
        form = draw(st.sampled_from(["apart", "equals", "attached"]))
        if form == "equals" and option.startswith("--"):
            parts.append([f"{option}={value}"])
        elif form == "attached" and option == "-p":
            parts.append([f"-p{value}"])
        else:
            parts.append([option, value])
    argv += [token for part in draw(st.permutations(parts)) for token in part]
    if draw(st.booleans()):
        argv.insert(draw(st.integers(0, len(argv))), draw(STRAY))
    return argv


def _click_reads(argv: list[str]) -> dict[str, object] | None:
    """The parameters click gives ``trigger`` (and the group) for ``argv``, or None if click
    would not run ``trigger`` with them (an error, help, another command)."""
    try:
        ctx = cli_group.make_context("ductwork", list(argv), resilient_parsing=False)
        with warnings.catch_warnings():  # click 8.2 deprecates protected_args; 8.1 needs it
            warnings.simplefilter("ignore", DeprecationWarning)
            name, command, rest = cli_group.resolve_command(ctx, [*ctx.protected_args, *ctx.args])
        if name != "trigger" or command is None:
            return None
        sub = command.make_context("trigger", rest, parent=ctx)
    except (click.exceptions.Exit, click.UsageError, click.BadParameter):
        return None
    except SystemExit:
        return None
    return {**sub.params, **{k: ctx.params[k] for k in ("config_path", "home", "flows_folder")}}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(command_lines())
def test_the_command_line_is_read_as_click_reads_it(argv: list[str]) -> None:
    """Whatever the fast path takes, click would have run ``trigger`` with the same values."""
    with tempfile.TemporaryDirectory() as empty:  # no typed path exists as a file or folder
        old = os.getcwd()
        os.chdir(empty)
        try:
            typed = fast_trigger.parse(argv)
            if typed is None:
                return
            read = _click_reads(argv)
        finally:
            os.chdir(old)
    assert read is not None, f"click refuses {argv!r}, the fast path took it"
    params = typed.command_params()
    params["param_values"] = tuple(params["param_values"])  # type: ignore[arg-type]
    params.update(config_path=typed.config_path, home=typed.home, flows_folder=typed.flows_folder)
    for values in (params, read):  # nan is not equal to itself
        if isinstance(values["timeout"], float) and math.isnan(values["timeout"]):
            values["timeout"] = "nan"
    assert params == read


@settings(max_examples=200, deadline=None)
@given(
    flag_home=st.sampled_from([None, "flag-home", "/abs/flag-home", "~/tilde-home"]),
    env_home=st.sampled_from([None, "env-home", "/abs/env-home", "env-home\n"]),  # a secret file's newline
    file_home=st.sampled_from([None, "file-home", "/abs/file-home", " file-home "]),
    env_flows=st.sampled_from([None, "env-flows", "/abs/env-flows"]),
    file_flows=st.sampled_from([None, "file-flows"]),
    env_url=st.sampled_from([None, "", "\n", "postgresql://u@h/db", "postgresql://u@h/db\n", "sqlite:///rel.db"]),
    file_url=st.sampled_from([None, "sqlite:////abs/x.db"]),
    config_by=st.sampled_from(["default", "env", "flag"]),
)
def test_the_home_folder_and_database_are_the_settings_ones(
    flag_home: str | None,
    env_home: str | None,
    file_home: str | None,
    env_flows: str | None,
    file_flows: str | None,
    env_url: str | None,
    file_url: str | None,
    config_by: str,
) -> None:
    """The fast path finds the scheduler of the home ``Settings.load`` would give the command,
    and names the same flows folder and database."""
    with tempfile.TemporaryDirectory() as cwd:
        lines = ["[ductwork]"]
        for key, value in (("home", file_home), ("flows_folder", file_flows), ("database_url", file_url)):
            if value is not None:
                lines.append(f"{key} = {json.dumps(value)}")
        name = "ductwork.toml" if config_by == "default" else "custom.toml"
        Path(cwd, name).write_text("\n".join(lines) + "\n")
        environ = {"HOME": os.environ.get("HOME", "/root")}
        for key, value in (("HOME", env_home), ("FLOWS_FOLDER", env_flows), ("DATABASE_URL", env_url)):
            if value is not None:
                environ[f"DUCTWORK_{key}"] = value
        if config_by == "env":
            environ["DUCTWORK_CONFIG"] = name
        typed = fast_trigger.Typed()
        typed.config_path = name if config_by == "flag" else None
        typed.home = flag_home
        old = os.getcwd()
        os.chdir(cwd)
        try:
            where = fast_trigger.locate(typed, environ, cwd)
            loaded = Settings.load(
                config_path=typed.config_path,
                environ=environ,
                overrides={"home": Path(flag_home).expanduser() if flag_home else None},
            )
        finally:
            os.chdir(old)
    assert where is not None
    assert where.home == os.path.realpath(os.path.join(cwd, loaded.home))
    assert where.flows_folder == os.path.realpath(os.path.join(cwd, loaded.flows_folder))
    assert scheduler_socket.normal_database_url(where.database_url, where.home, cwd) == (
        scheduler_socket.normal_database_url(loaded.database_url, where.home, cwd)
    )


def test_an_argument_that_is_not_utf8_is_left_to_the_cli() -> None:
    """The scheduler could not record it (it logged a warning and left the command to fail):
    the CLI refuses it by name (``tests/cli/test_non_utf8_arguments.py``)."""
    koeln = os.fsdecode(b"K\xf6ln")
    assert fast_trigger.parse(["trigger", "etl", "--conf", '{"city": "Köln"}']) is not None
    conf = '{"city": "' + koeln + '"}'
    assert fast_trigger.parse(["trigger", "etl", "--conf", conf]) is None
    assert fast_trigger.parse(["trigger", koeln]) is None
