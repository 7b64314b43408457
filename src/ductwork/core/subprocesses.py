"""Stopping a command a task started in a session of its own (``start_new_session=True``, so
that its children can be stopped with it): SIGTERM to its whole process group, then SIGKILL
to what is left after a grace period. The worker's own SIGKILL would not reach it: the
command is not in the worker's process group.

A process killed with SIGKILL stops nothing; so the commands it starts are listed with a guard,
a small shell of its own that stops them when the process's end closes its input."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

STOP_GRACE = 3.0
"""Seconds a command has to exit after SIGTERM (less than the pool's ``kill_grace``, 5 s by
default, so the worker is still alive to send the SIGKILL)."""


def stop_group(proc: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """SIGTERM ``proc``'s process group, wait up to ``grace`` seconds for ``proc`` to exit,
    then SIGKILL whatever of the group is left (a command that ignores SIGTERM, or children
    that outlived it)."""
    if proc.poll() is not None and not _group_alive(proc.pid):
        return
    _signal_group(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


_GUARD_SCRIPT = r"""
trap '' INT TERM HUP
declare -A groups
while read -r op group; do
  case $op in
    +) groups[$group]=1 ;;
    -) unset "groups[$group]" ;;
  esac
done
[ ${#groups[@]} -eq 0 ] && exit 0
for group in "${!groups[@]}"; do kill -TERM -- "-$group" 2>/dev/null; done
for _ in $(seq 30); do
  alive=0
  for group in "${!groups[@]}"; do kill -0 -- "-$group" 2>/dev/null && alive=1; done
  [ $alive -eq 0 ] && exit 0
  sleep 0.1
done
for group in "${!groups[@]}"; do kill -KILL -- "-$group" 2>/dev/null; done
"""
"""The guard: it reads ``+ PGID`` / ``- PGID`` lines; at end of input (its process died, even by
SIGKILL, so the kernel closed the pipe) it stops the groups still listed, as ``stop_group``
would. Terminal signals pass it by: it ends only when its input does."""


class _Guard:
    """The process's guard, started at its first command (a process that starts no command
    pays nothing) and again in a forked child, whose inherited pipe is closed (the parent's
    guard must see its input end when the parent dies, not when the last child does)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def watch(self, pgid: int) -> None:
        with self._lock:
            if self._pid != os.getpid() or self._proc is None or self._proc.poll() is not None:
                self._start()
            self._send(f"+ {pgid}\n")

    def release(self, pgid: int) -> None:
        with self._lock:
            if self._pid == os.getpid() and self._proc is not None:
                self._send(f"- {pgid}\n")

    def _start(self) -> None:
        global _forks_hooked
        if not _forks_hooked:
            os.register_at_fork(after_in_child=self._forget)
            _forks_hooked = True
        self._pid = os.getpid()
        try:
            self._proc = subprocess.Popen(
                ["bash", "-c", _GUARD_SCRIPT, "ductwork-command-guard"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                start_new_session=True,
            )
        except OSError:  # no bash: commands run unguarded, as before
            self._proc = None

    def _send(self, line: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write(line.encode())
            proc.stdin.flush()
        except (BrokenPipeError, ValueError, OSError):
            self._proc = None  # the guard was killed: the next command starts another

    def _forget(self) -> None:
        """In a forked child: drop the parent's guard without signalling it."""
        proc, self._proc, self._pid = self._proc, None, 0
        self._lock = threading.Lock()
        if proc is not None and proc.stdin is not None:
            _inherited.append(proc)  # kept: its file object must never close the fd number again
            try:
                os.close(proc.stdin.fileno())
            except OSError:
                pass


_forks_hooked = False
_inherited: list[subprocess.Popen[bytes]] = []
_guard = _Guard()


def start_command(args: Sequence[str], **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(args, start_new_session=True, **popen)``, and the command's group
    listed with this process's guard: if this process is killed (SIGKILL leaves it no time to
    stop anything), the guard stops the command and the children it started. Call
    ``command_ended`` once the command has been waited for."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(list(args), start_new_session=True, **popen)
    _guard.watch(proc.pid)
    return proc


def command_ended(proc: subprocess.Popen[bytes]) -> None:
    """Take ``proc``'s group off the guard's list (the command was waited for)."""
    _guard.release(proc.pid)
