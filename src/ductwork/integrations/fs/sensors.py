"""``FileSensor``: wait until a file, a glob or a prefix exists on any fsspec storage."""

from __future__ import annotations

from typing import Any

from ductwork.core.context import TaskContext
from ductwork.core.sensors import BaseSensorOperator, PokeReturnValue
from ductwork.errors import DefinitionError
from ductwork.integrations.fs._fsspec import open_fs, split_protocol

_GLOB_CHARS = ("*", "?", "[")


class FileSensor(BaseSensorOperator):
    """Waits until ``path`` exists and passes the matching paths downstream.

    ``path`` is a local path or a URL (``"s3://bucket/in/{{ ds }}.csv"``, templated). It is a
    glob when it contains ``*``, ``?`` or ``[``; with ``prefix=True`` anything whose path
    starts with it matches (``"s3://bucket/logs/2024-01-"``). A directory counts once it
    holds at least one file. ``min_count`` asks for several matches.
    """

    template_fields = ("path",)
    ui_color = "#91818a"

    def __init__(
        self,
        *,
        path: str,
        prefix: bool = False,
        min_count: int = 1,
        storage_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(path, str) or not path:
            raise DefinitionError(f"FileSensor(task_id={kwargs.get('task_id')!r}): path must be a non-empty string")
        if min_count < 1:
            raise DefinitionError(f"FileSensor(task_id={kwargs.get('task_id')!r}): min_count must be at least 1")
        super().__init__(**kwargs)
        self.path = path
        self.prefix = prefix
        self.min_count = min_count
        self.storage_options = dict(storage_options or {})

    def poke(self, context: TaskContext) -> PokeReturnValue:
        fs, path = open_fs(self.path, self.storage_options, what=f"task {self.task_id!r} (FileSensor)")
        matches = self._matches(fs, path)
        context["log"].info("%s: %d match(es) for %s", self.task_id, len(matches), self.path)
        found = len(matches) >= self.min_count
        return PokeReturnValue(found, [self._url(m) for m in matches] if found else None)

    def _matches(self, fs: Any, path: str) -> list[str]:
        if any(c in path for c in _GLOB_CHARS):
            return sorted(fs.glob(path))
        if self.prefix:
            parent = fs._parent(path)
            try:
                return sorted(p for p in fs.find(parent) if p.startswith(path))
            except FileNotFoundError:
                return []
        if not fs.exists(path):
            return []
        if fs.isdir(path):
            return sorted(fs.find(path))
        return [path]

    def _url(self, path: str) -> str:
        protocol, _ = split_protocol(self.path)
        if protocol == "file" and "://" not in self.path:
            return path
        return f"{protocol}://{path.lstrip('/')}" if protocol != "memory" else f"memory://{path}"

    def extra_spec(self) -> dict[str, Any]:
        return {**super().extra_spec(), "path": self.path}
