"""What the engine needs from the code behind a node, whatever style it was written in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ductwork.core.context import TaskContext


class Executable(Protocol):
    """Operators satisfy this directly; class tasks through ``ClassTaskRunner``."""

    task_id: str
    template_fields: Sequence[str]
    do_xcom_push: bool
    on_execute_callback: list[Callable[[TaskContext], Any]]
    on_success_callback: list[Callable[[TaskContext], Any]]
    on_failure_callback: list[Callable[[TaskContext], Any]]
    on_retry_callback: list[Callable[[TaskContext], Any]]

    def execute(self, context: TaskContext) -> Any: ...

    def on_kill(self) -> None: ...
