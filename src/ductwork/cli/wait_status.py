"""The exit status of ``ductwork trigger --wait``, whichever way the run was queued (written by
the command, or handed to the scheduler: ``cli.fast_trigger``). Standard library only: the
handed-over path imports it before anything heavy."""

from __future__ import annotations

import sys

TIMED_OUT = 3
"""The run had not ended when ``--timeout`` passed (1: it failed)."""


def wait_status(state: str, timeout: float | None) -> int:
    """0 succeeded, 1 failed, ``TIMED_OUT`` still going when ``--timeout`` passed (said on
    standard error, so ``trigger --wait && next_step`` stops)."""
    if state in ("success", "failed"):
        return 1 if state == "failed" else 0
    sys.stderr.write(f"timed out after {timeout:g}s: the run is still {state} (it goes on)\n")
    return TIMED_OUT
