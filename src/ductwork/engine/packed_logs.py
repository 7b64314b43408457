"""The logs of short tries, kept in one file per run folder (ADR 0018).

Creating a file costs more than a whole no-op try on the disks this runs on (25 us to 1.3 ms
measured, ``benchmarks/RESULTS.md``): a 1,000-task ``ductwork build`` spent about a third of its
time creating log files. So a try's log is held while the try is short (in memory for in-process
runs, ``logcapture.TrySink``; in a pool process's staging file, ``executors.staged_log``), and when
it ends its text goes into the run folder's ``_tries.log`` in one append, under a header that
names the file it stands for (``==> load.1.log (123 bytes) <==``, as ``tail`` heads several
files). A try that runs longer than ``SPILL_AFTER`` seconds, or writes more than ``SPILL_BYTES``,
gets its own file as before, so a long try's log can be followed while it runs.

Readers ask ``read_packed`` for a try's log file when the file itself does not exist. The name
``_tries.log`` cannot be a try's (``engine.local.safe_name`` never starts a name with ``_``), and
the run folder's clean-up removes it with the rest of the folder.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

PACK_NAME = "_tries.log"
SPILL_AFTER = 0.5
"""Seconds after which a running try's log gets its own file (to be followed while it runs)."""
SPILL_BYTES = 64 * 1024
"""A try's log larger than this gets its own file (memory stays small)."""

_HEAD = b"==> "
_TAIL = b" bytes) <==\n"


class PackedLogs:
    """The pack files an executor appends to, one per run folder, open until ``close``.

    Each entry is written by one ``write`` on a descriptor opened with ``O_APPEND``: entries of
    threads and of other processes never interleave, and a try's entry starts at the offset the
    descriptor reports after its write, less its size."""

    def __init__(self, *, spill_after: float = SPILL_AFTER, max_open: int = 16) -> None:
        """``max_open``: pack files kept open (a pool process goes from run to run for days)."""
        self.spill_after = spill_after
        self.max_open = max_open
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()

    def append(self, log_path: str | Path, text: str) -> tuple[str, int, int]:
        """Pack ``text`` as the log ``log_path`` would hold: (pack file, offset of the text, size)."""
        return self.append_bytes(log_path, text.encode("utf-8", errors="replace"))

    def append_bytes(self, log_path: str | Path, body: bytes) -> tuple[str, int, int]:
        folder, name = os.path.split(os.fspath(log_path))  # no pathlib: this runs for every try
        data = _HEAD + name.encode() + b" (" + str(len(body)).encode() + _TAIL + body
        with self._lock:
            fd = self._fds.get(folder)
            if fd is not None and os.fstat(fd).st_nlink == 0:  # deleted since (its folder removed)
                os.close(self._fds.pop(folder))
                fd = None
            if fd is None:
                if len(self._fds) >= self.max_open:  # the folder used least recently
                    os.close(self._fds.pop(next(iter(self._fds))))
                os.makedirs(folder, exist_ok=True)
                fd = os.open(os.path.join(folder, PACK_NAME), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._fds[folder] = fd
            else:
                self._fds[folder] = self._fds.pop(folder)  # the most recently used comes last
            written = os.write(fd, data)
            while written < len(data):  # only a full disk stops a regular file's write early (it raises next)
                written += os.write(fd, data[written:])
            end = os.lseek(fd, 0, os.SEEK_CUR)
        return os.path.join(folder, PACK_NAME), end - len(body), len(body)

    def close(self) -> None:
        with self._lock:
            fds, self._fds = self._fds, {}
        for fd in fds.values():
            os.close(fd)


def staging_path(log_path: str, pid: int) -> str:
    """Where the pool process ``pid`` stages the log of a try in ``log_path``'s run folder
    (``executors.staged_log``); its parent looks there when the process died mid-try."""
    return os.path.join(os.path.dirname(log_path), f"_staging.{pid}.log")


def rescue_staged(log_path: str, pid: int) -> None:
    """A pool process died during the try of ``log_path``: what it staged becomes that try's
    log file (unless the try has one already)."""
    staged = staging_path(log_path, pid)
    if os.path.exists(staged) and not os.path.exists(log_path):
        try:
            os.rename(staged, log_path)
        except OSError:
            pass


def keep_if_removed(fd: int, log_path: str) -> None:
    """A try's own log file was removed while the try wrote to it (its run folder deleted by
    hand or by a clean-up that did not know the try ran): what the open descriptor still holds
    is written back at ``log_path``, so the try's log is not lost without a word. Called as the
    try's log closes; one ``fstat`` when nothing was removed."""
    try:
        if os.fstat(fd).st_nlink > 0:
            return
        size = os.fstat(fd).st_size
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, "ab") as out:
            offset = 0
            while offset < size:
                chunk = os.pread(fd, min(1 << 20, size - offset), offset)
                if not chunk:
                    break
                out.write(chunk)
                offset += len(chunk)
    except OSError as exc:
        import logging

        logging.getLogger(__name__).warning(
            "the log %s was removed during its try and cannot be written again: %s", log_path, exc
        )


def write_all(fd: int, text: str) -> None:
    """Write ``text`` to a try's log descriptor (a short write is followed by the rest)."""
    data = text.encode("utf-8", "replace")
    while data:
        data = data[os.write(fd, data) :]


def read_range(pack: str | Path, offset: int, size: int) -> str:
    with open(pack, "rb") as fh:
        fh.seek(offset)
        return fh.read(size).decode("utf-8", errors="replace")


def read_log(log_path: Path) -> str | None:
    """A try's log wherever it is: its own file, then its entries in the run folder's pack (a
    try number run twice, as when its worker died before it began, may have both), or None."""
    try:
        own: str | None = log_path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        own = None
    parts = [text for text in (own, read_packed(log_path)) if text is not None]
    return "".join(parts) if parts else None


def read_packed(log_path: Path) -> str | None:
    """What was packed for the log file ``log_path`` (its entries in order, as appends to the
    file would have been), or None when nothing was."""
    pack = log_path.parent / PACK_NAME
    try:
        ranges = [(offset, size) for name, offset, size in entries(pack) if name == log_path.name]
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not ranges:
        return None
    with pack.open("rb") as fh:
        parts = []
        for offset, size in ranges:
            fh.seek(offset)
            parts.append(fh.read(size))
    return b"".join(parts).decode("utf-8", errors="replace")


def entries(pack: Path) -> Iterator[tuple[str, int, int]]:
    """(the log file it stands for, offset, size) of each entry of a pack, in order; an entry
    cut short by a crash ends the list."""
    with pack.open("rb") as fh:
        length = os.fstat(fh.fileno()).st_size  # entries appended from now on are not listed
        while True:
            entry = _parse_header(fh.readline())
            if entry is None:
                return
            name, size = entry
            offset = fh.tell()
            if fh.seek(size, os.SEEK_CUR) > length:
                return
            yield name.decode(errors="replace"), offset, size


def _parse_header(line: bytes) -> tuple[bytes, int] | None:
    if not (line.startswith(_HEAD) and line.endswith(_TAIL)):
        return None
    name, _, size = line[len(_HEAD) : -len(_TAIL)].rpartition(b" (")
    return (name, int(size)) if size.isdigit() else None
