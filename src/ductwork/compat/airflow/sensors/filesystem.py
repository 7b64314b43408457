"""``airflow.sensors.filesystem.FileSensor``: a path (glob) exists, on the local disk or any
fsspec URL (``fs_conn_id`` is accepted; paths are used as they are)."""

from __future__ import annotations

import glob
import os
from typing import Any

from ductwork.core.context import TaskContext

from .base import BaseSensorOperator


class FileSensor(BaseSensorOperator):
    template_fields = ("filepath",)

    def __init__(
        self, *, filepath: str, fs_conn_id: str = "fs_default", recursive: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.filepath = filepath
        self.fs_conn_id = fs_conn_id
        self.recursive = recursive

    def poke(self, context: TaskContext) -> bool:
        path = str(self.filepath)
        context["log"].info("looking for %s", path)
        if "://" in path:
            import fsspec

            fs, _, paths = fsspec.get_fs_token_paths(path)
            return any(fs.exists(p) for p in paths) or bool(fs.glob(path))
        for found in glob.glob(path, recursive=self.recursive):
            if os.path.isfile(found):
                return True
            for _, _, files in os.walk(found):
                if files:
                    return True
        return False


__all__ = ["FileSensor"]
