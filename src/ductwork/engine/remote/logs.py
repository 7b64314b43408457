"""Try logs on any fsspec store, readable from another host while the try runs.

Object stores cannot append, so a log is a folder of chunks: ``<url>/<start offset>.log``, each
written whole (an object put, or a rename on a file system) with the bytes the try wrote since
the previous chunk. A reader that has read ``offset`` bytes lists the folder and reads the
chunks that start at or after it: following a running try's log costs a listing and the new
bytes, nothing more.

The worker writes the try's output to a local file first (descriptors 1 and 2 point at it, so
subprocess output is captured too, as in the local pool) and a thread ships what is new every
``interval`` seconds, and once more when the try ends.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

from ductwork.core.context import RunInfo
from ductwork.engine.local import safe_name


def remote_log_url(base: str, run: RunInfo, task_id: str, try_number: int) -> str:
    """``<base>/<flow>/<run>/<task>.<try>.log`` (a folder of chunks)."""
    return f"{base.rstrip('/')}/{safe_name(run.flow_id)}/{safe_name(run.run_id)}/{safe_name(task_id)}.{try_number}.log"


def is_remote(path: str | None) -> bool:
    return bool(path) and "://" in str(path)


def _fs(url: str) -> tuple[Any, str]:
    from fsspec.core import url_to_fs

    return url_to_fs(url)


class LogShipper:
    """Copies what a local log file gains to a remote log folder, in chunks."""

    def __init__(self, local_path: str, url: str, *, interval: float = 1.0) -> None:
        self.local_path = local_path
        self.url = url
        self.interval = interval
        self.offset = 0
        self.error: str | None = None
        self._fs, self._root = _fs(url)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ductwork-log-shipper", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Ship the rest and stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.ship()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.ship()

    def ship(self) -> None:
        with self._lock:
            try:
                with open(self.local_path, "rb") as fh:
                    fh.seek(self.offset)
                    data = fh.read()
            except OSError:
                return
            if not data:
                return
            try:
                self._put(f"{self.offset:012d}.log", data)
            except Exception as exc:  # the store is down: keep the bytes, try again next time
                self.error = f"{type(exc).__name__}: {exc}"
                return
            self.offset += len(data)

    def _put(self, name: str, data: bytes) -> None:
        path = f"{self._root.rstrip('/')}/{name}"
        protocol = self._fs.protocol if isinstance(self._fs.protocol, str) else self._fs.protocol[0]
        if protocol in ("file", "local"):
            os.makedirs(self._root, exist_ok=True)
            tmp = f"{self._root}/.{name}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
            return
        with self._fs.open(path, "wb") as fh:
            fh.write(data)


def read_remote_log(url: str, offset: int = 0) -> tuple[bytes, int]:
    """The bytes of a remote log from ``offset`` on, and the offset after them."""
    fs, root = _fs(url)
    try:
        entries = fs.ls(root, detail=False)
    except (FileNotFoundError, NotADirectoryError):
        return b"", offset
    chunks = []
    for entry in entries:
        name = str(entry).rstrip("/").rsplit("/", 1)[-1]
        stem = name[: -len(".log")] if name.endswith(".log") else ""
        if stem.isdigit():
            chunks.append((int(stem), str(entry)))
    out = bytearray()
    position = offset
    for start, path in sorted(chunks):
        if start < position:
            continue
        if start > position:  # a chunk not listed yet (an eventually consistent store): stop here
            break
        with fs.open(path, "rb") as fh:
            data = fh.read()
        out += data
        position = start + len(data)
    return bytes(out), position


def remote_log_exists(url: str) -> bool:
    fs, root = _fs(url)
    with contextlib.suppress(Exception):
        return bool(fs.exists(root))
    return False
