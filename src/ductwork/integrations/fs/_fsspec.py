"""Opening an fsspec file system for a URL, with errors that say what is wrong and what to install."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ductwork.errors import DuctworkError
from ductwork.integrations._deps import MissingDependencyError, require

RENAME_PROTOCOLS = frozenset({"file", "local", "memory", "hdfs", "arrow_hdfs", "sftp", "ssh", "ftp", "smb"})
"""Storages where a write goes to a temporary name and is renamed into place."""

TRANSACTION_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})
"""Object stores where an upload becomes visible only when it is committed."""

_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "hdfs": "hdfs", "arrow_hdfs": "hdfs"}
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def split_protocol(url: str) -> tuple[str, str]:
    """(protocol, rest) of a URL; a plain path is ``("file", path)``. Pure."""
    match = _SCHEME.match(url)
    if match is None:
        return "file", url
    return match.group(1).lower(), url[match.end() :]


def open_fs(url: str, storage_options: Mapping[str, Any], *, what: str) -> tuple[Any, str]:
    """(file system, path inside it) for ``url``; raises ``DuctworkError`` naming ``what``."""
    protocol, _ = split_protocol(url)
    fsspec = require("fsspec", extra="fs", what=what)
    from fsspec.registry import known_implementations

    if protocol not in known_implementations and protocol not in fsspec.available_protocols():
        raise DuctworkError(
            f"{what}: unknown storage scheme {protocol!r} in {url!r}; known schemes include "
            f"file, memory, s3, gs, hdfs, sftp, http and the others fsspec lists in "
            f"fsspec.available_protocols()"
        )
    try:
        fs, path = fsspec.core.url_to_fs(url, **storage_options)
    except ImportError as exc:
        extra = _EXTRAS.get(protocol)
        hint = f"pip install 'ductwork[{extra}]'" if extra else f"install the fsspec implementation for {protocol!r}"
        raise MissingDependencyError(
            f"{what}: storage {protocol!r} needs a library that is missing ({exc}); {hint}"
        ) from exc
    except (ValueError, TypeError) as exc:
        raise DuctworkError(f"{what}: cannot open storage for {url!r}: {exc}") from exc
    return fs, path
