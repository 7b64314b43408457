"""Large results kept in an object store (any fsspec URL), with only a reference in the database.

``ObjectStore("s3://bucket/ductwork/results")`` writes each value to its own object,
``<base>/<flow>/<run>/<task>/<key>.<uuid>.<serializer>``, before the database row that points
at it is written: a reader that finds the row always finds the object, and a value pushed
again gets a new object (the old one is deleted once the row no longer points at it).
References are full URLs, so reading needs no configuration; the ``memory://`` file system
is per process, which makes it fit for in-process tests only.
"""

from __future__ import annotations

import urllib.parse
import uuid
from typing import Any

from ductwork.store.errors import StoreError


def _fsspec() -> Any:
    try:
        import fsspec
    except ImportError as exc:
        raise StoreError(
            f"offloading results to an object store needs fsspec ({exc}); install it with: pip install 'ductwork[fs]'"
        ) from exc
    return fsspec


def _segment(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.=+")


class ObjectStore:
    def __init__(self, url: str) -> None:
        if "://" not in url:
            raise StoreError(
                f"results_offload_url {url!r} must be an fsspec URL such as s3://bucket/prefix or file:///path"
            )
        self.url = url.rstrip("/")

    def reference(self, run_key: str, task_id: str, key: str, serializer: str) -> str:
        flow_id, _, run_id = run_key.partition("/")
        name = f"{_segment(key)}.{uuid.uuid4().hex[:12]}.{serializer}"
        return "/".join((self.url, _segment(flow_id), _segment(run_id), _segment(task_id), name))

    def put(self, run_key: str, task_id: str, key: str, data: bytes, *, serializer: str) -> str:
        """Write ``data`` to a new object; its URL."""
        reference = self.reference(run_key, task_id, key, serializer)
        fs, path = _fsspec().core.url_to_fs(reference)
        try:
            parent = path.rsplit("/", 1)[0]
            if parent:
                fs.makedirs(parent, exist_ok=True)
            fs.pipe_file(path, data)
        except Exception as exc:
            raise StoreError(f"cannot write result {key!r} of task {task_id!r} to {reference}: {exc}") from exc
        return reference


def read_reference(reference: str) -> bytes:
    try:
        fs, path = _fsspec().core.url_to_fs(reference)
        return bytes(fs.cat_file(path))
    except StoreError:
        raise
    except FileNotFoundError:
        raise StoreError(f"the object {reference} that holds this result is gone from the object store") from None
    except Exception as exc:
        raise StoreError(f"cannot read the result kept at {reference}: {type(exc).__name__}: {exc}") from exc


def delete_reference(reference: str) -> None:
    """Delete an object; one that is already gone is fine."""
    fs, path = _fsspec().core.url_to_fs(reference)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        pass
