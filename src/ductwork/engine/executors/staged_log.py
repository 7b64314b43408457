"""A pool process's try log, staged in one file that the process reuses from try to try.

Creating a file per try cost more than a no-op try under the scheduler (ADR 0018). A pool
process writes each try's log to its staging file in the run's log folder
(``_staging.<pid>.log``), on one descriptor that descriptors 1 and 2 point to while the try runs,
so a subprocess's output lands there too, in order. When the try ends short, its text goes to the
run folder's pack (``engine.packed_logs``) and the staging file is emptied for the next try. A try
still running after the pack's ``spill_after``, or whose log passed ``SPILL_BYTES``, has the
staging file renamed to its own log file: it goes on writing there, and can be followed. If the
process dies mid-try, its parent renames what was staged to the try's log file
(``packed_logs.rescue_staged``).
"""

from __future__ import annotations

import os

from ductwork.engine import logcapture
from ductwork.engine.alarms import ALARMS
from ductwork.engine.packed_logs import SPILL_BYTES, PackedLogs, keep_if_removed, staging_path, write_all

_FLAGS = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class Stage:
    """A pool process's staging file in one run folder, open from try to try."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.fd = -1

    def take(self, log_path: str) -> int:
        """The descriptor to write the try of ``log_path`` to (empty)."""
        path = staging_path(log_path, os.getpid())
        if self.fd >= 0 and path == self.path and os.fstat(self.fd).st_nlink > 0:
            return self.fd
        self.release()  # another run's folder, or this one removed since
        try:
            self.fd = os.open(path, _FLAGS, 0o644)
        except FileNotFoundError:  # the run's first try here: its folder does not exist yet
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self.fd = os.open(path, _FLAGS, 0o644)
        self.path = path
        return self.fd

    def give_away(self) -> None:
        """The staging file became a try's log file: the next try stages in a new one."""
        self.path, self.fd = None, -1

    def release(self) -> None:
        """Close and remove the (empty) staging file of the folder this process leaves."""
        if self.fd >= 0:
            os.close(self.fd)
            if self.path is not None:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
        self.give_away()


class StagedLog(logcapture.TrySink):
    def __init__(self, path: str, stage: Stage, packs: PackedLogs) -> None:
        super().__init__(None)
        self._log = path  # a str: a Path costs a tenth of a no-op try here
        self._stage = stage
        self._packs = packs
        self.fd = stage.take(path)
        self._spilled = False
        self._began = False
        self._spill_alarm = ALARMS.set(packs.spill_after, self._spill_on_time)

    def write(self, text: str) -> None:
        if self.fd >= 0 and self._lost is None:
            try:
                write_all(self.fd, text)
            except OSError as exc:
                if not self._began:  # the try's first line: a platform fault, the try not begun
                    raise
                # The log's disk filled up during the try (or its quota did): the rest of the
                # output is dropped and the try goes on, as ``TrySink.write`` does for
                # ``ductwork run``. The error reached the task's ``print`` and ended the pool
                # process: the try was failed and charged for the platform's fault.
                self._lost = exc
                logcapture.warn_unwritable(self._log, exc, "the rest of this try's output is dropped")
                return
            self._began = True

    def _spill_on_time(self) -> None:
        with self._lock:
            if self.fd >= 0 and not self._spilled:
                try:
                    self._spill()
                except OSError:  # it stays staged, and is packed (or renamed) at its end
                    pass

    def _spill(self) -> None:
        assert self._stage.path is not None
        os.rename(self._stage.path, self._log)
        self._stage.give_away()
        self._spilled = True

    def close(self) -> None:
        with self._lock:
            ALARMS.cancel(self._spill_alarm)
            fd, self.fd = self.fd, -1
            if fd < 0:
                return
            if not self._spilled:
                try:
                    size = os.fstat(fd).st_size
                    if size == 0:  # nothing written (a try that could not begin): nothing to keep
                        return
                    if size <= SPILL_BYTES:
                        self._packs.append_bytes(self._log, os.pread(fd, size, 0))
                        os.ftruncate(fd, 0)
                        return  # the stage keeps its descriptor for the next try
                except OSError:  # a full disk: a file of its own instead (a rename needs no space)
                    pass
                try:
                    self._spill()
                except OSError:  # left staged: the stage keeps its descriptor
                    return
            keep_if_removed(fd, self._log)
            os.close(fd)
