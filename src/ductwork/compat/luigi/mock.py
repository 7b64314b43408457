"""``luigi.mock``: targets kept in memory (``MockTarget``), shared by the whole process and
the processes a build forks for its tasks (``--workers N``): as in Luigi, the data lives in a
``multiprocessing`` manager's dictionary, started the first time a mock path is used."""

from __future__ import annotations

import io
import threading
from typing import Any

from ductwork.core.targets import MemoryFileSystem, _MemoryWriter

from .format import formatted, split_mode
from .target import FileSystem, FileSystemTarget

_SHARED = MemoryFileSystem()
"""Its lock; as in Luigi, every ``MockFileSystem()`` sees the same paths, so a test's
``MockFileSystem().clear()`` empties what its ``MockTarget`` outputs wrote."""

_MANAGED: list[Any] = []
"""The manager's dictionary, once made (``_shared_data``)."""
_MAKING = threading.Lock()


def _shared_data() -> Any:
    """The mock data, in a dictionary a forked task's process writes to as well (a plain one
    lost what a task wrote in its own process)."""
    if not _MANAGED:
        with _MAKING:
            if not _MANAGED:
                import multiprocessing

                _MANAGED.append(multiprocessing.Manager().dict())
    return _MANAGED[0]


class MockFileSystem(FileSystem, MemoryFileSystem):
    """A dictionary of path to bytes, one for the whole process and the tasks it forks."""

    def __init__(self) -> None:
        self._lock = _SHARED._lock

    @property
    def _data(self) -> Any:  # type: ignore[override]  # the manager's dictionary, made when first used
        return _shared_data()

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
