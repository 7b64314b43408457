"""``FileTarget``: a target on any storage fsspec reaches (local disk, ``memory://``, ``s3://``,
``gs://``, ``hdfs://``...), with the same contract as ``LocalTarget``.

Writes are atomic wherever the storage allows it, so a failed or killed task never leaves a
half-written output that would make it look complete:

===================================  ================================================================
storage                              how a write becomes visible
===================================  ================================================================
local, ``memory``, ``hdfs``,          written under a temporary sibling name, renamed into place
``sftp``, ``ftp``, ``smb``           when the ``with`` block ends cleanly; removed on error
``s3``, ``gs``, ``az``/``abfs``      opened with ``autocommit=False``: the object appears only when
                                     the upload is committed at a clean close; aborted on error
(anything else, e.g. ``http``)       written in place: NOT atomic (``FileTarget.atomic`` is False); a
                                     failed write removes what it wrote, as far as it can
===================================  ================================================================
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable
from typing import IO, Any

from ductwork.core.targets import AtomicOnClose, AtomicTextWrapper
from ductwork.errors import DuctworkError
from ductwork.integrations.fs._fsspec import RENAME_PROTOCOLS, TRANSACTION_PROTOCOLS, open_fs, split_protocol
from ductwork.integrations.fs.formats import Format, resolve_format


class _AtomicWriter(AtomicOnClose, io.BufferedIOBase):
    """A binary file whose data becomes visible through ``commit`` on a clean close, and is
    thrown away through ``discard`` when the ``with`` block fails or the file is never closed."""

    def __init__(self, raw: Any, commit: Callable[[], None], discard: Callable[[], None]) -> None:
        super().__init__()
        self._raw = raw
        self._commit = commit
        self._discard = discard
        self._failed = False
        self._written = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        n = self._raw.write(data)
        self._written += len(data) if n is None else n
        return len(data) if n is None else int(n)

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        if not self._raw.closed:
            self._raw.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._failed:
                self._discard()
            else:
                self._commit()
        finally:
            super().close()


def _check_mode(mode: str) -> tuple[bool, bool]:
    if mode not in ("r", "w", "rb", "wb"):
        raise ValueError(f"unsupported mode {mode!r}: use 'r', 'w', 'rb' or 'wb'")
    return mode.startswith("w"), mode.endswith("b")


class FileTarget:
    """A file on any fsspec storage.

    Args:
        url: ``"s3://bucket/key"``, ``"gs://..."``, ``"hdfs://..."``, ``"memory://..."``, or a local
            path (``"out/x.csv"``, ``"file:///tmp/x"``).
        format: ``"text"``, ``"json"``, ``"csv"``, ``"parquet"`` or a ``Format``; by default
            chosen from the suffix (text when none matches). Used by ``read``/``write``.
        storage_options: passed to the file system (credentials, endpoint, ...).
    """

    def __init__(self, url: str | os.PathLike[str], *, format: str | Format | None = None, **storage_options: Any):
        self.url = os.fspath(url)
        if not self.url:
            raise DuctworkError("FileTarget needs a non-empty path or URL")
        self.protocol, _ = split_protocol(self.url)
        self.format = resolve_format(format, self.url)
        self.storage_options = storage_options
        self._fs: Any = None
        self._path = ""

    # --- the file system ---------------------------------------------------------------------
    @property
    def fs(self) -> Any:
        """The ``fsspec`` file system (created on first use)."""
        if self._fs is None:
            self._fs, self._path = open_fs(self.url, self.storage_options, what=repr(self))
        return self._fs

    @property
    def path(self) -> str:
        """The path inside the file system (no protocol)."""
        self.fs  # noqa: B018 - resolves the path too
        return self._path

    @property
    def atomic(self) -> bool:
        """Whether writes become visible all at once (see the module documentation)."""
        return self.protocol in RENAME_PROTOCOLS or self.protocol in TRANSACTION_PROTOCOLS

    # --- the Target contract -----------------------------------------------------------------
    def exists(self) -> bool:
        return bool(self.fs.exists(self.path))

    def open(self, mode: str = "r") -> IO[Any]:
        """Open for reading, or for a write that is atomic where the storage allows it."""
        writing, binary = _check_mode(mode)
        if not writing:
            raw = self.fs.open(self.path, "rb")
            return raw if binary else io.TextIOWrapper(raw, encoding="utf-8")
        writer: Any = self._writer()
        return writer if binary else AtomicTextWrapper(writer, encoding="utf-8")

    def _writer(self) -> _AtomicWriter:
        fs, path = self.fs, self.path
        parent = fs._parent(path)
        if self.protocol in RENAME_PROTOCOLS:
            if parent:
                fs.makedirs(parent, exist_ok=True)
            name = path.rsplit("/", 1)[-1]
            tmp = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:8]}" if parent else f".{name}.tmp-{uuid.uuid4().hex[:8]}"
            raw = fs.open(tmp, "wb")

            def commit() -> None:
                raw.close()
                fs.mv(tmp, path)

            def discard() -> None:
                raw.close()
                if fs.exists(tmp):
                    fs.rm(tmp)

            return _AtomicWriter(raw, commit, discard)
        if self.protocol in TRANSACTION_PROTOCOLS:
            raw = fs.open(path, "wb", autocommit=False)

            def commit_upload() -> None:
                raw.close()
                raw.commit()

            def abort_upload() -> None:
                raw.close()
                raw.discard()

            return _AtomicWriter(raw, commit_upload, abort_upload)
        raw = fs.open(path, "wb")

        def remove_partial() -> None:
            raw.close()
            try:
                fs.rm(path)
            except (OSError, NotImplementedError):
                pass

        return _AtomicWriter(raw, raw.close, remove_partial)

    def remove(self) -> None:
        """Delete the file (or directory tree) if it exists."""
        if self.fs.exists(self.path):
            self.fs.rm(self.path, recursive=True)

    # --- values ------------------------------------------------------------------------------
    def read(self) -> Any:
        """The file's content through the target's format (rows for CSV/Parquet, a value for JSON)."""
        with self.open("rb") as fh:
            return self.format.load(fh)

    def write(self, obj: Any) -> None:
        """Write ``obj`` through the target's format, atomically where the storage allows it."""
        with self.open("wb") as fh:
            self.format.dump(obj, fh)

    def read_text(self) -> str:
        with self.open("r") as fh:
            return str(fh.read())

    def write_text(self, text: str) -> None:
        with self.open("w") as fh:
            fh.write(text)

    def __repr__(self) -> str:
        return f"FileTarget({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FileTarget) and other.url == self.url and other.storage_options == self.storage_options

    def __hash__(self) -> int:
        return hash(("FileTarget", self.url))
