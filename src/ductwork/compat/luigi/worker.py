"""``luigi.worker``: workers are Ductwork's executors; the name exists so imports work."""

from __future__ import annotations

from typing import Any

from .interface import worker as worker


class TaskProcess:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("Luigi's task processes are Ductwork's executors")


class Worker:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("Luigi's Worker class is not part of Ductwork's shim: use luigi.build()")
