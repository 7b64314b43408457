"""Commands a process starts in sessions of their own die with it, even by SIGKILL
(``core.subprocesses``): its guard stops them when the process's end closes its input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ductwork_process import process_env

PROGRAM = """
import os, sys, time
from pathlib import Path
from ductwork.core.subprocesses import command_ended, start_command

out = Path(sys.argv[1])
done = start_command(["true"])
done.wait()
command_ended(done)  # waited for: off the list
kept = start_command(["bash", "-c", "sleep 300; echo late"])
(out / "command").write_text(str(kept.pid))
child = os.fork()
if child == 0:  # a forked child holds a copy of the guard's pipe: it must not keep the guard waiting
    time.sleep(300)
    os._exit(0)
(out / "child").write_text(str(child))
time.sleep(300)
"""


def _alive_group(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(path: Path, proc: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 30
    while not path.exists() or not path.read_text():
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, f"{path.name} never written"
        time.sleep(0.02)
    return int(path.read_text())


def test_a_killed_process_takes_its_commands_and_their_children_with_it(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM, str(tmp_path)], env=process_env({}), stderr=subprocess.PIPE)
    child = 0
    try:
        command = _wait_for(tmp_path / "command", proc)
        child = _wait_for(tmp_path / "child", proc)
        assert _alive_group(command)
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive_group(command) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive_group(command), "the command (bash and its sleep) outlived the killed process"
        os.kill(child, 0)  # still there: the guard stops commands, not the process's forked children
    finally:
        proc.kill()
        if child:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_the_guard_outlives_terminal_signals_sent_to_everything(tmp_path: Path, signum: int) -> None:
    """The guard is the last to go: a Ctrl-C or a hangup reaching it first would leave the
    commands unguarded."""
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM, str(tmp_path)], env=process_env({}), stderr=subprocess.PIPE)
    child = 0
    try:
        command = _wait_for(tmp_path / "command", proc)
        child = _wait_for(tmp_path / "child", proc)
        guards = subprocess.run(
            ["pgrep", "-P", str(proc.pid), "-f", "ductwork-command-guard"], capture_output=True, text=True
        )
        (guard,) = guards.stdout.split()
        os.kill(int(guard), signum)
        time.sleep(0.2)
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive_group(command) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive_group(command)
    finally:
        proc.kill()
        if child:
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
