"""The ``ductwork`` process ends as soon as its command is done (``cli.quick_exit``), with all its
output, its exit status and its exit handlers, and waits as before for what still runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from ductwork_process import ductwork_command, ductwork_process, process_env

LOUD = """
from ductwork import Flow, PythonOperator


def shout():
    for i in range(20_000):
        print(f"line {i:05d} of a long log")


def fail():
    raise RuntimeError("this task fails")


with Flow("loud") as flow:
    PythonOperator(task_id="shout", python_callable=shout)

with Flow("broken") as broken:
    PythonOperator(task_id="fail", python_callable=fail)
"""


def _ductwork(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point (``main``, where the quick exit is) in a process of its own."""
    return ductwork_process(*args, env={"DUCTWORK_HOME": str(tmp_path / "home")}, cwd=tmp_path)


def test_output_larger_than_a_pipe_arrives_whole_and_statuses_are_kept(tmp_path: Path) -> None:
    (tmp_path / "loud.py").write_text(LOUD)
    done = _ductwork(tmp_path, "run", "loud.py:loud", "--no-progress")
    assert done.returncode == 0, done.stderr
    found = re.search(r"^run (\S+): success", done.stdout, re.MULTILINE)
    assert found, done.stdout

    logs = _ductwork(tmp_path, "tasks", "logs", "loud", found[1], "shout")
    assert logs.returncode == 0, logs.stderr
    lines = [line for line in logs.stdout.splitlines() if "of a long log" in line]
    assert len(lines) == 20_000 and lines[-1].endswith("line 19999 of a long log")  # ~600 KB through a pipe

    failed = _ductwork(tmp_path, "run", "loud.py:broken", "--no-progress")
    assert failed.returncode == 1 and "failed" in failed.stdout

    missing = _ductwork(tmp_path, "runs", "show", "loud", "no-such-run")
    assert missing.returncode == 2 and "no-such-run" in missing.stderr


def test_a_reader_that_went_away_is_not_taken_for_a_failed_run(tmp_path: Path) -> None:
    """`ductwork run etl | head -1` exited 1, the status of a failed run, for a run that had
    succeeded: output that no one reads now ends the command with 141, as a shell reports a
    program SIGPIPE ended (`git log | head -1`), and nothing on standard error; the run is kept."""
    (tmp_path / "loud.py").write_text(LOUD)
    env = {"DUCTWORK_HOME": str(tmp_path / "home")}
    for args in (["run", "loud.py:loud", "--no-progress"], ["runs", "list"], ["runs", "list", "--json"]):
        read, write = os.pipe()
        os.close(read)  # the reader is gone before the command writes a line
        try:
            done = subprocess.run(
                ductwork_command(*args), env=process_env(env), cwd=tmp_path, stdout=write, stderr=subprocess.PIPE
            )
        finally:
            os.close(write)
        assert done.returncode == 141 and not done.stderr, (args, done.returncode, done.stderr)
    listed = _ductwork(tmp_path, "runs", "list", "--json")
    assert '"state": "success"' in listed.stdout, listed.stdout


def _script(tmp_path: Path, body: str) -> subprocess.CompletedProcess[str]:
    code = "from ductwork.cli.quick_exit import leave\n" + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_exit_handlers_run_and_buffered_output_is_flushed(tmp_path: Path) -> None:
    done = _script(
        tmp_path,
        """
        import atexit, pathlib, sys
        atexit.register(lambda: pathlib.Path("handler-ran").write_text("yes"))
        sys.stdout.write("buffered, no newline")
        leave(SystemExit(3))
        """,
    )
    assert done.returncode == 3
    assert done.stdout == "buffered, no newline"
    assert (tmp_path / "handler-ran").read_text() == "yes"


def test_a_thread_still_working_is_waited_for(tmp_path: Path) -> None:
    done = _script(
        tmp_path,
        """
        import pathlib, threading, time
        def finish():
            time.sleep(0.5)
            pathlib.Path("thread-finished").write_text("yes")
        threading.Thread(target=finish).start()
        leave(SystemExit(0))
        """,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "thread-finished").read_text() == "yes"


def test_a_text_exit_status_is_printed_as_python_does(tmp_path: Path) -> None:
    done = _script(tmp_path, 'leave(SystemExit("Error: no flow named x"))\n')
    assert done.returncode == 1 and "Error: no flow named x" in done.stderr


def test_a_profiled_command_still_writes_its_profile(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", "cli.prof", "-m", "ductwork.cli", "--version"],
        cwd=tmp_path,
        env={**os.environ, "DUCTWORK_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "version" in done.stdout, done.stderr
    assert (tmp_path / "cli.prof").stat().st_size > 0
