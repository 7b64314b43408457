"""``luigi.target``: Luigi's target classes over Ductwork's."""

from __future__ import annotations

import abc
import contextlib
import os
import random
from collections.abc import Iterator
from typing import Any


class FileSystemException(Exception):
    pass


class FileAlreadyExists(FileSystemException):
    pass


class MissingParentDirectory(FileSystemException):
    pass


class NotADirectory(FileSystemException):
    pass


class Target(abc.ABC):
    """Something a task produces; ``exists()`` says whether it is there."""

    @abc.abstractmethod
    def exists(self) -> bool: ...


class FileSystem(abc.ABC):
    @abc.abstractmethod
    def exists(self, path: str) -> bool: ...

    def remove(self, path: str, recursive: bool = True, skip_trash: bool = True) -> None:
        raise NotImplementedError

    def mkdir(self, path: str, parents: bool = True, raise_if_exists: bool = False) -> None:
        raise NotImplementedError

    def isdir(self, path: str) -> bool:
        raise NotImplementedError

    def listdir(self, path: str) -> Any:
        raise NotImplementedError


class FileSystemTarget(Target):
    """A target with a ``path`` on some file system (``fs``)."""

    def __init__(self, path: str) -> None:
        self.path = str(path)

    @property
    @abc.abstractmethod
    def fs(self) -> FileSystem: ...

    @abc.abstractmethod
    def open(self, mode: str = "r") -> Any: ...

    def exists(self) -> bool:
        return self.fs.exists(self.path)

    def remove(self) -> None:
        self.fs.remove(self.path)

    @contextlib.contextmanager
    def temporary_path(self) -> Iterator[str]:
        """A path to write with any tool; it becomes the target only if the block succeeds."""
        tmp = f"{self.path.rstrip('/')}-luigi-tmp-{random.randrange(10**10):010d}"
        parent = os.path.dirname(tmp)
        if parent:
            os.makedirs(parent, exist_ok=True)
        yield tmp
        self.fs.rename_dont_move(tmp, self.path)  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return self.path


class AtomicLocalFile:
    """Kept for imports; Ductwork's local targets write atomically already."""
