"""S3 paths of a pipeline, reached through fsspec.

``s3://bucket/key`` goes to S3 through ``s3fs`` (``pip install 'ductwork[s3]'``), or to any
other fsspec store when ``DUCTWORK_S3_ROOT`` is set: with ``DUCTWORK_S3_ROOT=file:///srv/s3``
the path ``s3://bucket/key`` is ``/srv/s3/bucket/key``, which is how a definition written for
AWS runs unchanged against a local disk, MinIO (``s3`` with an endpoint) or a test store.
Other URLs (``file://``, ``memory://``, plain paths) are used as they are.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from ductwork.integrations.fs._fsspec import open_fs, split_protocol

S3_ROOT_ENV = "DUCTWORK_S3_ROOT"


def resolve(url: str) -> str:
    """The URL to open for ``url`` (``s3://`` mapped under ``DUCTWORK_S3_ROOT`` when set)."""
    root = os.environ.get(S3_ROOT_ENV, "").strip()
    protocol, rest = split_protocol(url)
    if root and protocol in ("s3", "s3n", "s3a"):
        return root.rstrip("/") + "/" + rest.lstrip("/")
    return url


def _fs(url: str) -> tuple[Any, str]:
    return open_fs(resolve(url), {}, what=f"data pipeline path {url!r}")


def exists(url: str) -> bool:
    fs, path = _fs(url)
    return bool(fs.exists(path))


def is_file(url: str) -> bool:
    fs, path = _fs(url)
    return bool(fs.isfile(path))


def list_files(url: str) -> list[str]:
    """The files under ``url`` (a prefix or a directory), as paths relative to it."""
    fs, path = _fs(url)
    base = path.rstrip("/")
    if fs.isfile(base):
        return [Path(base).name]
    found = fs.find(base) if fs.exists(base) else []
    return sorted(str(p)[len(base) :].lstrip("/") for p in found)


def prefix_not_empty(url: str) -> bool:
    """Whether any object starts with ``url`` (S3's notion of a prefix, not only a folder)."""
    fs, path = _fs(url)
    if fs.exists(path):
        return bool(fs.isfile(path) or fs.find(path))
    parent, _, stem = path.rstrip("/").rpartition("/")
    try:
        return any(str(p).rpartition("/")[2].startswith(stem) for p in fs.ls(parent or "/", detail=False))
    except FileNotFoundError:
        return False


def read_text(url: str) -> str:
    fs, path = _fs(url)
    with fs.open(path, "rb") as fh:
        return fh.read().decode("utf-8")


@contextmanager
def open_for_write(url: str, *, append: bool = False) -> Iterator[IO[str]]:
    """A text file to write at ``url`` (parents created); ``append`` adds to a local file."""
    fs, path = _fs(url)
    parent = path.rpartition("/")[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    mode = "a" if append and split_protocol(resolve(url))[0] == "file" else "w"
    with fs.open(path, mode) as fh:
        yield fh


def download(url: str, folder: Path) -> list[Path]:
    """Copy the file at ``url``, or every file under it, into ``folder``."""
    fs, path = _fs(url)
    folder.mkdir(parents=True, exist_ok=True)
    base = path.rstrip("/")
    copied: list[Path] = []
    if fs.isfile(base):
        target = folder / Path(base).name
        fs.get_file(base, str(target))
        return [target]
    for name in list_files(url):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(f"{base}/{name}", str(target))
        copied.append(target)
    return copied


def upload(folder: Path, url: str) -> list[str]:
    """Copy every file under ``folder`` to ``url`` (a directory path); the URLs written."""
    fs, path = _fs(url)
    base = path.rstrip("/")
    written: list[str] = []
    for local in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = local.relative_to(folder).as_posix()
        target = f"{base}/{rel}"
        fs.makedirs(target.rpartition("/")[0], exist_ok=True)
        fs.put_file(str(local), target)
        written.append(f"{url.rstrip('/')}/{rel}")
    return written


def write_bytes(url: str, data: bytes) -> None:
    fs, path = _fs(url)
    parent = path.rpartition("/")[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    with fs.open(path, "wb") as fh:
        fh.write(data)


def read_bytes(url: str) -> bytes:
    fs, path = _fs(url)
    with fs.open(path, "rb") as fh:
        return bytes(fh.read())
