"""Whether the try log folder (``log_dir``) can be written, asked once when a command starts.

``ductwork run`` goes on without log files when it cannot; a scheduler's workers cannot start a
try at all (each is put back, not charged, and tried again): either way the person who started
the command hears it in its first lines, not only from a worker's log later."""

from __future__ import annotations

import tempfile
from pathlib import Path


def log_dir_fault(logs: Path) -> OSError | None:
    """Why try logs cannot be written in ``logs`` (creating it if missing), or None when they can.
    The probe writes a page, so a disk with no room for one is found full here."""
    try:
        logs.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=logs) as probe:
            probe.write(b"\0" * 4096)
            probe.flush()
    except OSError as exc:
        return exc
    return None


def reason(exc: OSError) -> str:
    """The short cause (``Permission denied``, ``No space left on device``)."""
    return exc.strerror or str(exc)
