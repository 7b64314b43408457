"""The version of an input, for a try's fingerprint: cheap facts that change when the data does.

- a local file (``file://`` or a path): size and modification time, or a content hash when the
  asset says ``extra={"version": "content"}``; a folder: the same over its files;
- an object in any fsspec store (``s3://``, ``gs://``, ``memory://``...): its ETag (or checksum,
  or size and modification time, whichever the store reports);
- a table: ``extra={"version_query": "select count(*), max(updated_at) from orders"}`` on an
  asset whose URI is a SQLAlchemy URL; the query's rows are the version.

A version that cannot be read is ``"missing"`` (a file not there yet) or ``"unreadable: ..."``;
either differs from any real version, and a fingerprint with an unreadable input matches no
earlier try (``caching.check``): the task runs.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ductwork.core.assets import Asset
from ductwork.core.versioning import digest, value_hash

MISSING = "missing"
UNREADABLE = "unreadable:"
_MAX_FILES = 10_000


def asset_version(asset: Asset) -> str:
    extra = asset.extra or {}
    try:
        if extra.get("version_query"):
            return _query_version(asset.uri, str(extra["version_query"]))
        if asset.uri.startswith("file://"):
            return path_version(Path(unquote(urlparse(asset.uri).path)), content=extra.get("version") == "content")
        return _fsspec_version(asset.uri)
    except Exception as exc:  # a broken store must not hide the task: it runs, and says why
        return f"{UNREADABLE} {type(exc).__name__}: {exc}"[:200]


def path_version(path: Path, *, content: bool = False) -> str:
    """A local file's or folder's version."""
    if not path.exists():
        return MISSING
    files = sorted(p for p in path.rglob("*") if p.is_file())[:_MAX_FILES] if path.is_dir() else [path]
    h = hashlib.sha256()
    for file in files:
        h.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        if content:
            with file.open("rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
        else:
            st = os.stat(file)
            h.update(f":{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def _fsspec_version(uri: str) -> str:
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec is in the fs extra
        return "unreadable: fsspec is not installed (pip install 'ductwork[fs]')"
    fs, path = fsspec.core.url_to_fs(uri)
    if not fs.exists(path):
        return MISSING
    info: dict[str, Any] = fs.info(path)
    for key in ("ETag", "etag", "md5Hash", "checksum", "crc32c"):
        if info.get(key):
            return f"{key}:{str(info[key]).strip(chr(34))}"
    if info.get("type") == "directory":
        return value_hash(sorted((e["name"], e.get("size"), str(e.get("mtime", ""))) for e in fs.ls(path, detail=True)))
    return value_hash([info.get("size"), str(info.get("mtime") or info.get("LastModified") or info.get("created"))])


def _query_version(uri: str, query: str) -> str:
    import sqlalchemy as sa

    engine = sa.create_engine(uri, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(sa.text(query))]
    finally:
        engine.dispose()
    return digest(repr(rows).encode())
