"""Try logs on any fsspec store, readable from another host while the try runs.

Object stores cannot append, so a log is a folder of chunks: ``<url>/<start offset>.log``, each
written whole (an object put, or a rename on a file system) with the bytes the try wrote since
the previous chunk. A reader that has read ``offset`` bytes lists the folder and reads the
chunks that start at or after it: following a running try's log costs a listing and the new
bytes, nothing more. A try that ends before its first chunk is due (most tries) is written as
one object at ``<url>`` itself, not a folder: one object (one file, not a folder and a file)
per short try.

The worker writes the try's output to a local file first (descriptors 1 and 2 point at it, so
subprocess output is captured too, as in the local pool) and ships what is new every
``interval`` seconds, and once more when the try ends. One thread per process does the periodic
shipping for all its running tries (``_Ticker``): a try that ends within its first interval
costs no thread start, only its final chunk.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
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
        self._fs: Any = None
        if url.startswith("file://"):  # no fsspec for a local folder (a try's log costs less)
            self._root = url[len("file://") :]
        else:
            self._fs, self._root = _fs(url)
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        _ticker().add(self)

    def close(self) -> None:
        """Ship the rest and stop (the local file may be reused for the next try at once)."""
        _ticker().remove(self)
        with self._lock:
            self._ship(last=True)
            self._closed = True

    def ship(self) -> None:
        with self._lock:
            if not self._closed:
                self._ship()

    def _ship(self, *, last: bool = False) -> None:
        try:
            with open(self.local_path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except OSError:
            return
        if not data:
            return
        try:
            self._put(None if last and self.offset == 0 else f"{self.offset:012d}.log", data)
        except Exception as exc:  # the store is down: keep the bytes, try again next time
            self.error = f"{type(exc).__name__}: {exc}"
            return
        self.offset += len(data)

    def _put(self, name: str | None, data: bytes) -> None:
        """A chunk ``name`` in the log's folder, or (``None``) the whole log as one object."""
        root = self._root.rstrip("/")
        path = root if name is None else f"{root}/{name}"
        protocol = "file" if self._fs is None else self._fs.protocol
        if not isinstance(protocol, str):
            protocol = protocol[0]
        if protocol in ("file", "local"):
            folder, base = os.path.split(path)
            os.makedirs(folder, exist_ok=True)
            tmp = f"{folder}/.{base}.{os.getpid()}.tmp"
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
            return
        with self._fs.open(path, "wb") as fh:
            fh.write(data)


class _Ticker:
    """The process's one shipping thread: every shipper's new bytes, every ``interval``."""

    def __init__(self) -> None:
        self._due: dict[LogShipper, float] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, shipper: LogShipper) -> None:
        with self._lock:
            self._due[shipper] = time.monotonic() + shipper.interval
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="ductwork-log-shipper", daemon=True)
                self._thread.start()

    def remove(self, shipper: LogShipper) -> None:
        with self._lock:
            self._due.pop(shipper, None)

    def _loop(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                due = [s for s, at in self._due.items() if at <= now]
                for shipper in due:
                    self._due[shipper] = now + shipper.interval
                nearest = min(self._due.values(), default=now + 1.0)
            for shipper in due:
                shipper.ship()  # its own lock: a try's final ship waits for this one
            self._wake.wait(max(0.01, min(1.0, nearest - time.monotonic())))


_TICKERS: dict[int, _Ticker] = {}


def _ticker() -> _Ticker:
    """This process's ticker (a forked pool process starts its own thread)."""
    pid = os.getpid()
    ticker = _TICKERS.get(pid)
    if ticker is None:
        ticker = _TICKERS[pid] = _Ticker()
    return ticker


def read_remote_log(url: str, offset: int = 0) -> tuple[bytes, int]:
    """The bytes of a remote log from ``offset`` on, and the offset after them."""
    fs, root = _fs(url)
    try:
        if fs.isfile(root):  # a try that ended before its first chunk: the whole log
            with fs.open(root, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
            return data, offset + len(data)
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
