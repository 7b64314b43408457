"""``luigi.local_target``: files on the local disk, written atomically."""

from __future__ import annotations

import errno
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ductwork.core.targets import _AtomicLocalFile

from .format import formatted, split_mode
from .target import FileAlreadyExists, FileSystem, FileSystemTarget, MissingParentDirectory


class LocalFileSystem(FileSystem):
    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def mkdir(self, path: str, parents: bool = True, raise_if_exists: bool = False) -> None:
        if self.exists(path):
            if raise_if_exists:
                raise FileAlreadyExists(path)
            return
        if parents:
            os.makedirs(path)
        else:
            if not os.path.exists(os.path.dirname(path) or "."):
                raise MissingParentDirectory(path)
            os.mkdir(path)

    def isdir(self, path: str) -> bool:
        return os.path.isdir(path)

    def listdir(self, path: str) -> Any:
        for root, _dirs, files in os.walk(path):
            for name in files:
                yield os.path.join(root, name)

    def remove(self, path: str, recursive: bool = True, skip_trash: bool = True) -> None:
        if recursive and self.isdir(path):
            shutil.rmtree(path)
        else:
            os.remove(path)

    def move(self, old_path: str, new_path: str, raise_if_exists: bool = False) -> None:
        """Rename atomically; to another file system (``/tmp`` to a data disk), copy beside the
        destination and rename that into place, as Luigi does (``os.replace`` alone failed
        there with ``Invalid cross-device link``)."""
        if raise_if_exists and os.path.exists(new_path):
            raise FileAlreadyExists(new_path)
        parent = os.path.dirname(new_path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        try:
            os.replace(old_path, new_path)
        except OSError as err:
            if err.errno != errno.EXDEV:
                raise
            beside = f"{new_path}-{random.randint(0, 999999999):09d}"
            shutil.copy(old_path, beside)
            os.replace(beside, new_path)
            os.remove(old_path)

    def rename_dont_move(self, path: str, dest: str) -> None:
        self.move(path, dest, raise_if_exists=True)

    def copy(self, old_path: str, new_path: str, raise_if_exists: bool = False) -> None:
        """Copy a file, making the destination's folders first, as Luigi does."""
        if raise_if_exists and os.path.exists(new_path):
            raise FileAlreadyExists(new_path)
        parent = os.path.dirname(new_path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        shutil.copy(old_path, new_path)


class LocalTarget(FileSystemTarget):
    """A file; ``open("w")`` writes a temporary file renamed into place on a clean close."""

    fs = LocalFileSystem()

    def __init__(self, path: str | os.PathLike[str] | None = None, format: Any = None, is_tmp: bool = False) -> None:
        if path is None:
            if not is_tmp:
                raise ValueError("path or is_tmp must be set")
            path = os.path.join(tempfile.gettempdir(), f"luigi-tmp-{os.getpid()}-{id(self)}")
        super().__init__(str(path))
        self.format = format
        self.is_tmp = is_tmp

    def makedirs(self) -> None:
        parent = os.path.dirname(os.path.normpath(self.path))
        if parent:
            os.makedirs(parent, exist_ok=True)

    def open(self, mode: str = "r") -> Any:
        """``r`` or ``w`` through the target's format (text by default); a write is atomic."""
        writing, binary = split_mode(mode)
        if writing:
            self.makedirs()
            stream: Any = _AtomicLocalFile(Path(self.path))
        else:
            stream = open(self.path, "rb")  # noqa: SIM115
        return formatted(stream, self.format, writing=writing, binary=binary)

    def move(self, new_path: str, raise_if_exists: bool = False) -> None:
        self.fs.move(self.path, new_path, raise_if_exists=raise_if_exists)

    def move_dir(self, new_path: str) -> None:
        self.move(new_path)

    def remove(self) -> None:
        self.fs.remove(self.path)

    def copy(self, new_path: str, raise_if_exists: bool = False) -> None:
        self.fs.copy(self.path, new_path, raise_if_exists)

    @property
    def fn(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"LocalTarget({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalTarget) and os.path.abspath(other.path) == os.path.abspath(self.path)

    def __hash__(self) -> int:
        return hash(("LocalTarget", os.path.abspath(self.path)))

    def __del__(self) -> None:
        if getattr(self, "is_tmp", False) and os.path.exists(self.path):
            try:
                self.fs.remove(self.path)
            except OSError:
                pass


File = LocalTarget
atomic_file = _AtomicLocalFile
