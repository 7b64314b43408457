"""The guard under which the CLI imports a user's file in its own process (ADR 0019)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from ductwork.import_guard import ImportExit, ImportTimeout, descendants, guarded_import


def test_os_exit_raises_during_the_import_and_exits_again_after_it() -> None:
    real_exit = os._exit
    handler = signal.getsignal(signal.SIGALRM)
    with pytest.raises(ImportExit, match=r"os\._exit\(\) \(status 3\)"), guarded_import(30):
        try:
            os._exit(3)
        except Exception:  # a file's own catch-all does not swallow it
            pytest.fail("ImportExit was caught as an Exception")
    assert os._exit is real_exit
    assert signal.getsignal(signal.SIGALRM) is handler
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_an_import_past_its_time_is_stopped_with_what_it_started() -> None:
    started = time.monotonic()
    child: subprocess.Popen[bytes] | None = None
    with pytest.raises(ImportTimeout, match=r"longer than 0\.5s"), guarded_import(0.5):
        child = subprocess.Popen(["sleep", "60"])
        while True:  # a file that never finishes importing
            time.sleep(0.01)
    assert time.monotonic() - started < 10
    assert child is not None and child.wait(timeout=10) == -signal.SIGKILL


def test_a_quick_import_leaves_nothing_behind() -> None:
    with guarded_import(5):
        value = sum(range(10))
    assert value == 45
    time.sleep(0.1)  # no timer left to fire into the next statement
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_descendants_are_the_processes_below_this_one() -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert child.pid in descendants()
    finally:
        child.kill()
        child.wait()
    assert child.pid not in descendants()
