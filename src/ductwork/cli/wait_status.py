"""The exit status of ``ductwork trigger --wait``, whichever way the run was queued (written by
the command, or handed to the scheduler: ``cli.fast_trigger``). Standard library only: the
handed-over path imports it before anything heavy."""

from __future__ import annotations

import sys

TIMED_OUT = 3
"""The run had not ended when ``--timeout`` passed (1: it failed)."""

INTERRUPTED = 130
"""Ctrl-C (SIGINT) stopped the command, as a shell reports a command that SIGINT ended: a script
tells it from a failed run (1)."""


def status_for(state: str) -> int:
    """0 succeeded, 1 failed, ``TIMED_OUT`` any other state (the run had not ended)."""
    return 0 if state == "success" else 1 if state == "failed" else TIMED_OUT


def wait_status(state: str, timeout: float | None) -> int:
    """``status_for`` the state; a run still going when ``--timeout`` passed is said on
    standard error, so ``trigger --wait && next_step`` stops with a reason."""
    status = status_for(state)
    if status != TIMED_OUT:
        return status
    sys.stderr.write(f"timed out after {timeout:g}s: the run is still {state} (it goes on)\n")
    return TIMED_OUT


def stopped_waiting(flow_id: str, run_id: str) -> int:
    """Ctrl-C during ``trigger --wait``: only the waiting stops, the run goes on; say which run
    it is (nothing named it yet) and how to stop it."""
    sys.stderr.write(
        f"\nstopped waiting (Ctrl-C): run {run_id} of {flow_id} goes on; "
        f"`ductwork runs show {flow_id} {run_id}` follows it, `ductwork runs cancel {flow_id} {run_id}` stops it\n"
    )
    return INTERRUPTED
