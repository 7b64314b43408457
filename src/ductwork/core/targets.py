"""Targets: the outputs a class task promises, and how completeness is known.

A ``Target`` needs only ``exists()``; file-like targets add ``open()``. Writes are atomic: the
data goes to a temporary sibling and is renamed into place only when the ``with`` block ends
without an error, so a failed or killed run never leaves a half-written file that would make a
task look complete.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol, runtime_checkable


@runtime_checkable
class Target(Protocol):
    """Something a task produces; the task is complete when all its targets exist."""

    def exists(self) -> bool: ...


@runtime_checkable
class FileLikeTarget(Target, Protocol):
    def open(self, mode: str = "r") -> IO[Any]: ...


def _check_mode(mode: str) -> tuple[bool, bool]:
    """(writing, binary) for a mode of r, w, rb or wb."""
    if mode not in ("r", "w", "rb", "wb"):
        raise ValueError(f"unsupported mode {mode!r}: use 'r', 'w', 'rb' or 'wb'")
    return mode.startswith("w"), mode.endswith("b")


class AtomicOnClose:
    """For writers that publish their data on a clean close and throw it away when the ``with``
    block fails or the writer is dropped without a close (a crashed task leaves nothing).

    The class using it sets ``self._failed = False`` and looks at it in its ``close``.
    """

    _failed: bool
    closed: bool

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._failed = exc_type is not None
        self.close()  # type: ignore[attr-defined]

    def __del__(self) -> None:
        if not self.closed:  # dropped without a close: the writer never finished
            self._failed = True
        super().__del__()  # type: ignore[misc]


class AtomicTextWrapper(io.TextIOWrapper):
    """Text over an ``AtomicOnClose`` binary writer, passing the ``with`` outcome down to it."""

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.buffer._failed = exc_type is not None  # type: ignore[attr-defined]
        self.close()

    def __del__(self) -> None:
        if not self.closed:
            self.buffer._failed = True  # type: ignore[attr-defined]
        super().__del__()


class _AtomicLocalFile(AtomicOnClose, io.BufferedWriter):
    """A file written under a temporary name and moved into place on a clean close."""

    def __init__(self, final_path: Path) -> None:
        self.final_path = final_path
        self.tmp_path = final_path.with_name(f".{final_path.name}.tmp-{random.randrange(16**8):08x}")
        super().__init__(io.FileIO(self.tmp_path, "w"))
        self._failed = False

    def close(self) -> None:
        if self.closed:
            return
        super().close()
        if self._failed:
            with contextlib.suppress(FileNotFoundError):
                self.tmp_path.unlink()
        else:
            os.replace(self.tmp_path, self.final_path)


class LocalTarget:
    """A file on the local disk."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def open(self, mode: str = "r") -> IO[Any]:
        """Open for reading, or for an atomic write (the directory is created if needed)."""
        writing, binary = _check_mode(mode)
        if not writing:
            return self.path.open(mode, encoding=None if binary else "utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        raw = _AtomicLocalFile(self.path)
        return raw if binary else AtomicTextWrapper(raw, encoding="utf-8")

    @contextlib.contextmanager
    def temporary_path(self) -> Iterator[Path]:
        """A path to write with any tool; it becomes the target only if the block succeeds."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp-{random.randrange(16**8):08x}")
        try:
            yield tmp
        except BaseException:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            raise
        os.replace(tmp, self.path)

    def read_text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    def write_text(self, text: str) -> None:
        with self.open("w") as fh:
            fh.write(text)

    def remove(self) -> None:
        if self.path.is_dir():
            shutil.rmtree(self.path)
        elif self.path.exists():
            self.path.unlink()

    def __repr__(self) -> str:
        return f"LocalTarget({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalTarget) and other.path == self.path

    def __hash__(self) -> int:
        return hash(("LocalTarget", self.path))


class MemoryFileSystem:
    """A process-wide dictionary of byte strings, for tests that should not touch the disk.

    Like fsspec's ``memory://`` it is shared by every ``MemoryTarget`` in the process (tasks of
    one in-process run must see each other's outputs); ``ductwork.testing`` clears it.
    """

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def exists(self, name: str) -> bool:
        return name in self._data

    def get(self, name: str) -> bytes:
        try:
            return self._data[name]
        except KeyError:
            raise FileNotFoundError(f"memory target {name!r} does not exist") from None

    def put(self, name: str, data: bytes) -> None:
        with self._lock:
            self._data[name] = data

    def remove(self, name: str) -> None:
        with self._lock:
            self._data.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._data)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


MEMORY_FS = MemoryFileSystem()


class _MemoryWriter(AtomicOnClose, io.BytesIO):
    def __init__(self, fs: MemoryFileSystem, name: str) -> None:
        super().__init__()
        self._fs = fs
        self._name = name
        self._failed = False

    def close(self) -> None:
        if not self.closed and not self._failed:
            self._fs.put(self._name, self.getvalue())
        super().close()


class MemoryTarget:
    """A target held in memory; written atomically on close like ``LocalTarget``."""

    def __init__(self, name: str, fs: MemoryFileSystem | None = None) -> None:
        self.name = name
        self.fs = fs or MEMORY_FS

    def exists(self) -> bool:
        return self.fs.exists(self.name)

    def open(self, mode: str = "r") -> IO[Any]:
        writing, binary = _check_mode(mode)
        if writing:
            raw: Any = _MemoryWriter(self.fs, self.name)
            return raw if binary else AtomicTextWrapper(raw, encoding="utf-8")
        data = io.BytesIO(self.fs.get(self.name))
        return data if binary else io.TextIOWrapper(data, encoding="utf-8")

    def read_text(self) -> str:
        return self.fs.get(self.name).decode("utf-8")

    def write_text(self, text: str) -> None:
        self.fs.put(self.name, text.encode("utf-8"))

    def remove(self) -> None:
        self.fs.remove(self.name)

    def __repr__(self) -> str:
        return f"MemoryTarget({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MemoryTarget) and other.name == self.name and other.fs is self.fs

    def __hash__(self) -> int:
        return hash(("MemoryTarget", self.name))
