"""File systems that fail for real, for tests of platform faults: a small tmpfs that can be
filled (ENOSPC) and a read-only bind mount (EROFS). Both need root (mount); the tests that use
them skip locally without it and fail under DUCTWORK_REQUIRE_SERVICES=1. Always unmounted."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import REQUIRE_SERVICES


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = f"cannot mount ({' '.join(args)}): {done.stderr.strip()}"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


class SmallDisk:
    """A tmpfs of ``size`` bytes at ``path``; ``fill()`` uses up its space, ``free()`` gives it back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / ".filler"

    def fill(self) -> None:
        with open(self.filler, "ab") as out:
            chunk = b"\0" * 65536
            try:
                while True:
                    out.write(chunk)
                    out.flush()
            except OSError:
                pass
        try:  # what a 64 KiB chunk did not fit
            with open(self.filler, "ab", buffering=0) as out:
                while out.write(b"\0" * 512):
                    pass
        except OSError:
            pass

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)


@contextmanager
def small_disk(path: Path, size: str = "2m") -> Iterator[SmallDisk]:
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield SmallDisk(path)
    finally:
        _umount(path)


class ReadOnlyView:
    """``path`` shows ``source`` through a bind mount; ``read_only(True/False)`` flips it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read_only(self, on: bool) -> None:
        _mount("-o", f"remount,bind,{'ro' if on else 'rw'}", str(self.path))


@contextmanager
def bind_mount(source: Path, path: Path) -> Iterator[ReadOnlyView]:
    source.mkdir(parents=True, exist_ok=True)
    path.mkdir(parents=True, exist_ok=True)
    _mount("--bind", str(source), str(path))
    try:
        yield ReadOnlyView(path)
    finally:
        _umount(path)


def writable(path: Path) -> bool:
    try:
        fd = os.open(path / ".probe", os.O_WRONLY | os.O_CREAT, 0o644)
    except OSError:
        return False
    os.close(fd)
    os.unlink(path / ".probe")
    return True
