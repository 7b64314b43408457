"""``luigi.lock``: at most ``num_available`` processes with the same command line at once.

``luigi Task ...`` takes this lock unless ``--no-lock`` is given (``luigi.build`` never does), as
Luigi does: a pid file per command line under ``lock_pid_dir`` lists the processes holding it;
those no longer alive are forgotten.
"""

from __future__ import annotations

import hashlib
import os
import sys
from typing import Any


def getpcmd(pid: int) -> str:
    """The command line of process ``pid`` (empty when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return " ".join(sys.argv) if pid == os.getpid() else ""


def get_info(pid_dir: str, my_pid: int | None = None) -> tuple[int, str, str]:
    my_pid = my_pid or os.getpid()
    cmd = getpcmd(my_pid)
    digest = hashlib.md5(cmd.encode("utf-8"), usedforsecurity=False).hexdigest()
    return my_pid, cmd, os.path.join(pid_dir, digest) + ".pid"


def _alive(pid: int, cmd: str) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return getpcmd(pid) == cmd


def acquire_for(pid_dir: str, num_available: int = 1, kill_signal: Any = None) -> bool:
    """Whether this process may run (fewer than ``num_available`` others run the same command)."""
    my_pid, my_cmd, pid_file = get_info(pid_dir)
    os.makedirs(pid_dir, exist_ok=True)
    try:
        with open(pid_file) as fh:
            pids = {int(line) for line in fh if line.strip().isdigit()}
    except OSError:
        pids = set()
    others = {pid for pid in pids if pid != my_pid and _alive(pid, my_cmd)}
    if len(others) >= num_available:
        print(f"Pid(s) {others} already running")  # Luigi's words, on stdout as Luigi prints them
        return False
    with open(pid_file, "w") as fh:
        fh.write("".join(f"{pid}\n" for pid in sorted(others | {my_pid})))
    return True
