"""The exit status of ``ductwork trigger --wait``, whichever way the run was queued (written by
the command, or handed to the scheduler: ``cli.fast_trigger``). Standard library only: the
handed-over path imports it before anything heavy."""

from __future__ import annotations

import sys

TIMED_OUT = 3
"""The run had not ended when ``--timeout`` passed (1: it failed)."""


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
