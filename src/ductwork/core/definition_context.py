"""The flow and task group that are being defined (``with Flow(...)``, ``with TaskGroup(...)``).

Context variables rather than module globals: definitions in different threads or nested
``with`` blocks never see each other's state. The context knows a flow and a group only by
what an operator needs of them (``FlowScope``, ``GroupScope``), so the operator, the group and
the flow all build on this module without it, or each other, knowing their classes.
"""

from __future__ import annotations

import contextvars
import os
import sys
from collections.abc import Mapping
from typing import Any, Protocol


class FlowScope(Protocol):
    """The flow being defined, as operators and groups see it (``core.flow.Flow`` is one)."""

    @property
    def flow_id(self) -> str: ...

    @property
    def default_args(self) -> Mapping[str, Any]: ...

    @property
    def tasks(self) -> Mapping[str, Any]: ...

    def add_task(self, op: Any) -> None: ...

    def add_group(self, group: Any) -> None: ...


class GroupScope(Protocol):
    """The task group being defined, as operators see it (``core.task_group.TaskGroup`` is one)."""

    @property
    def group_id(self) -> str: ...

    @property
    def default_args(self) -> Mapping[str, Any]: ...

    @property
    def flow(self) -> FlowScope: ...

    def child_id(self, task_id: str) -> str: ...

    def add(self, op: Any) -> None: ...


_FLOW: contextvars.ContextVar[FlowScope | None] = contextvars.ContextVar("ductwork_flow", default=None)
_GROUP: contextvars.ContextVar[GroupScope | None] = contextvars.ContextVar("ductwork_group", default=None)

_COLLECTED: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar("ductwork_collected", default=None)

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def current_flow() -> FlowScope | None:
    return _FLOW.get()


def current_group() -> GroupScope | None:
    return _GROUP.get()


def push_flow(flow: FlowScope | None) -> contextvars.Token[FlowScope | None]:
    return _FLOW.set(flow)


def pop_flow(token: contextvars.Token[FlowScope | None]) -> None:
    _FLOW.reset(token)


def push_group(group: GroupScope | None) -> contextvars.Token[GroupScope | None]:
    return _GROUP.set(group)


def pop_group(token: contextvars.Token[GroupScope | None]) -> None:
    _GROUP.reset(token)


def start_collecting() -> contextvars.Token[list[Any] | None]:
    """Remember every flow whose ``with`` block ends from now on (while a flow file is
    imported), so a ``with Flow(...)`` / ``with DAG(...)`` block that is not bound to a module
    variable is still found."""
    return _COLLECTED.set([])


def stop_collecting(token: contextvars.Token[list[Any] | None]) -> list[Any]:
    collected = _COLLECTED.get() or []
    _COLLECTED.reset(token)
    return collected


def note_flow(flow: Any) -> None:
    collected = _COLLECTED.get()
    if collected is not None and not any(f is flow for f in collected):
        collected.append(flow)


def caller_site() -> tuple[str, int]:
    """File and line of the first caller outside the ductwork package (for error messages)."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_PACKAGE_DIR) and not filename.startswith("<frozen"):
            return filename, frame.f_lineno
        frame = frame.f_back  # type: ignore[assignment]
    return "<unknown>", 0
