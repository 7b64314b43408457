"""``ductwork`` run as a user runs it: a process of its own, with the test's environment added."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import ductwork

SOURCE = str(Path(ductwork.__file__).resolve().parents[1])
"""The ductwork this test imported. A child started in another folder would read a relative
``PYTHONPATH=src`` from there, miss it, and run whichever ductwork is installed instead."""


def process_env(env: dict[str, str]) -> dict[str, str]:
    """The test's environment with ``env`` added, and the ductwork under test first on the path."""
    merged = {**os.environ, **env}
    path = merged.get("PYTHONPATH", "")
    if path.split(os.pathsep)[0] != SOURCE:
        merged["PYTHONPATH"] = os.pathsep.join(p for p in (SOURCE, path) if p)
    return merged


def ductwork_command(*args: str) -> list[str]:
    """The command line of ``ductwork ARGS``; for a process the test starts and keeps running."""
    return [sys.executable, "-m", "ductwork.cli", *args]


def ductwork_process(
    *args: str, env: dict[str, str], cwd: Path | None, timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``ductwork ARGS`` to its end, its output captured as text (``cwd`` None: the test's own)."""
    return subprocess.run(
        ductwork_command(*args),
        env=process_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def scheduler_process(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    """``ductwork scheduler`` (one worker, a look at the store every 0.2 s) left running in a
    session of its own, what it writes going to ``log``; the test stops it."""
    with log.open("wb") as out:
        return subprocess.Popen(
            ductwork_command("scheduler", "--workers", "1", "--poll-interval", "0.2"),
            env=process_env(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as a service manager stops it; killed if it has not ended 30 s later."""
    import signal

    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
