"""The flow and task group that are being defined (``with Flow(...)``, ``with TaskGroup(...)``).

Context variables rather than module globals: definitions in different threads or nested
``with`` blocks never see each other's state.
"""

from __future__ import annotations

import contextvars
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ductwork.core.flow import Flow
    from ductwork.core.task_group import TaskGroup

_FLOW: contextvars.ContextVar[Flow | None] = contextvars.ContextVar("ductwork_flow", default=None)
_GROUP: contextvars.ContextVar[TaskGroup | None] = contextvars.ContextVar("ductwork_group", default=None)

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def current_flow() -> Flow | None:
    return _FLOW.get()


def current_group() -> TaskGroup | None:
    return _GROUP.get()


def push_flow(flow: Flow | None) -> contextvars.Token[Flow | None]:
    return _FLOW.set(flow)


def pop_flow(token: contextvars.Token[Flow | None]) -> None:
    _FLOW.reset(token)


def push_group(group: TaskGroup | None) -> contextvars.Token[TaskGroup | None]:
    return _GROUP.set(group)


def pop_group(token: contextvars.Token[TaskGroup | None]) -> None:
    _GROUP.reset(token)


def caller_site() -> tuple[str, int]:
    """File and line of the first caller outside the ductwork package (for error messages)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and not filename.startswith("<frozen"):
            return filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>", 0
