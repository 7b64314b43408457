"""``luigi.mock``: targets kept in memory (``MockTarget``), shared by the whole process and,
while a build runs its tasks in processes of their own (``--workers N``, ADR 0028), by those
processes: the data moves into a ``multiprocessing`` manager's dictionary for that build, as
Luigi keeps it there, and back into the process's own dictionary after it (the manager's
process does not outlive the build)."""

from __future__ import annotations

import contextlib
import io
import threading
from collections.abc import Iterator
from typing import Any

from ductwork.core.targets import MemoryFileSystem, _MemoryWriter

from .format import formatted, split_mode
from .target import FileSystem, FileSystemTarget

_SHARED = MemoryFileSystem()
"""The process's mock data and its lock; as in Luigi, every ``MockFileSystem()`` sees the same
paths, so a test's ``MockFileSystem().clear()`` empties what its ``MockTarget`` outputs wrote."""

_CURRENT: list[Any] = [_SHARED._data]
"""Where the data is now: the process's dictionary, or a forking build's manager dictionary."""
_MOVING = threading.Lock()


@contextlib.contextmanager
def shared_with_children() -> Iterator[None]:
    """For a build that forks its tasks: the data in a manager's dictionary, which what a
    task's process writes reaches (a plain one lost it), and back after the build."""
    import multiprocessing

    with _MOVING:
        if _CURRENT[0] is not _SHARED._data:  # a build inside a build: already shared
            yield
            return
        manager = multiprocessing.Manager()
        _CURRENT[0] = manager.dict(_SHARED._data)
    try:
        yield
    finally:
        with _MOVING:
            try:
                _SHARED._data.clear()
                _SHARED._data.update(_CURRENT[0].items())
            finally:
                _CURRENT[0] = _SHARED._data
                manager.shutdown()


class MockFileSystem(FileSystem, MemoryFileSystem):
    """A dictionary of path to bytes, one for the whole process (and the tasks a build forks)."""

    def __init__(self) -> None:
        self._lock = _SHARED._lock

    @property
    def _data(self) -> Any:  # type: ignore[override]  # the process's, or a forking build's manager's
        return _CURRENT[0]

    def get_all_data(self) -> Any:
        return self._data

    def get_data(self, fn: str) -> bytes:
        return self._data[fn]

    def exists(self, path: str) -> bool:
        return path in self._data

    def remove(self, path: str, recursive: bool = True, skip_trash: bool = True) -> None:
        removed = [p for p in list(self._data) if p == path or (recursive and p.startswith(path.rstrip("/") + "/"))]
        for name in removed:
            MemoryFileSystem.remove(self, name)

    def move(self, path: str, dest: str, raise_if_exists: bool = False) -> None:
        self.put(dest, self._data.pop(path))

    def rename_dont_move(self, path: str, dest: str) -> None:
        self.move(path, dest)

    def listdir(self, path: str) -> list[str]:
        prefix = path.rstrip("/") + "/"
        return sorted(p for p in self._data if p.startswith(prefix) or p == path)

    def isdir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return any(p.startswith(prefix) for p in self._data)

    def mkdir(self, path: str, parents: bool = True, raise_if_exists: bool = False) -> None:
        pass

    def clear(self) -> None:
        MemoryFileSystem.clear(self)


class MockTarget(FileSystemTarget):
    fs: MockFileSystem = MockFileSystem()

    def __init__(self, fn: str, is_tmp: Any = None, mirror_on_stderr: bool = False, format: Any = None) -> None:
        super().__init__(fn)
        self.is_tmp = is_tmp
        self.mirror_on_stderr = mirror_on_stderr
        self.format = format

    @property
    def fn(self) -> str:
        return self.path

    def exists(self) -> bool:
        """Whether the path holds data (looked up directly, as Luigi does, not through
        ``fs.exists``, which tests replace to fake folder listings)."""
        return self.path in self.fs.get_all_data()

    def move(self, path: str, raise_if_exists: bool = False) -> None:
        self.fs.move(self.path, path)

    def rename(self, *args: Any, **kwargs: Any) -> None:
        self.move(*args, **kwargs)

    def open(self, mode: str = "r") -> Any:
        """``r`` or ``w`` through the target's format (text by default), as ``LocalTarget``."""
        writing, binary = split_mode(mode)
        stream = _MemoryWriter(self.fs, self.path) if writing else io.BytesIO(self.fs.get(self.path))
        return formatted(stream, self.format, writing=writing, binary=binary)

    def __repr__(self) -> str:
        return f"MockTarget({self.path!r})"
