"""At most ``num_available`` processes with the same command line at once, as Luigi's lock.

A cron line that starts a build every hour must not start a second one while the first still
runs: both would build the same outputs. Luigi's ``luigi`` command keeps a pid file per command
line (named by its hash) in ``lock_pid_dir`` listing the processes that hold it; those no longer
alive (or now running something else) are forgotten. ``--take-lock`` signals the holders
(``signal_holders``) and lets one more process in. ``ductwork build`` and the ``luigi``
compatibility command share this module.
"""

from __future__ import annotations

import hashlib
import os
import sys


def getpcmd(pid: int) -> str:
    """The command line of process ``pid`` (empty when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return " ".join(sys.argv) if pid == os.getpid() else ""


def get_info(pid_dir: str, my_pid: int | None = None) -> tuple[int, str, str]:
    """This process's pid, its command line and the pid file of that command line."""
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


def holders(pid_dir: str, num_available: int = 1) -> set[int]:
    """The other live processes that hold the lock of this command line when there are
    ``num_available`` of them or more (this process may not run), else an empty set after
    adding this process to the pid file. ``OSError`` when ``pid_dir`` cannot be written."""
    my_pid, my_cmd, pid_file = get_info(pid_dir)
    os.makedirs(pid_dir, exist_ok=True)
    others = {pid for pid in _read_pids(pid_file) if pid != my_pid and _alive(pid, my_cmd)}
    if len(others) >= num_available:
        return others
    with open(pid_file, "w") as fh:
        fh.write("".join(f"{pid}\n" for pid in sorted(others | {my_pid})))
    return set()


def signal_holders(pid_dir: str, signum: int) -> set[int]:
    """Send ``signum`` to the other live processes that hold the lock of this command line, and
    return them. Luigi's ``--take-lock`` sends SIGUSR1: each holder stops taking new tasks and
    ends once its running ones have, so that the newcomer may start beside it."""
    my_pid, my_cmd, pid_file = get_info(pid_dir)
    sent: set[int] = set()
    for pid in _read_pids(pid_file):
        if pid == my_pid or not _alive(pid, my_cmd):
            continue
        try:
            os.kill(pid, signum)
        except OSError:  # it ended in between
            continue
        sent.add(pid)
    return sent


def _read_pids(pid_file: str) -> set[int]:
    try:
        with open(pid_file) as fh:
            return {int(line) for line in fh if line.strip().isdigit()}
    except FileNotFoundError:
        return set()
