"""Task groups: a named box of tasks, shown collapsible in the UI and usable in ``>>``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ductwork.core.definition_context import FlowScope, GroupScope, current_flow, current_group, pop_group, push_group
from ductwork.core.dependencies import DependencyMixin
from ductwork.core.keys import KEY_RULE, is_key, key_like
from ductwork.core.operators.base import BaseOperator
from ductwork.errors import DefinitionError


class TaskGroup(DependencyMixin):
    """Tasks created inside ``with TaskGroup("extract"):`` get ids like ``extract.load``.

    ``group >> task`` makes the group's last tasks upstream of ``task``; ``task >> group`` makes
    ``task`` upstream of the group's first tasks.
    """

    def __init__(
        self,
        group_id: str,
        *,
        prefix_group_id: bool = True,
        tooltip: str = "",
        default_args: Mapping[str, Any] | None = None,
        flow: FlowScope | None = None,
        parent_group: GroupScope | None = None,
    ) -> None:
        if not group_id or "." in group_id:
            raise DefinitionError(f"task group id {group_id!r} must be non-empty and contain no '.'")
        if not is_key(group_id):  # it starts the ids of its tasks: the same rule as theirs
            raise DefinitionError(f"invalid task group id {group_id!r}: {KEY_RULE}; write {key_like(group_id)!r}")
        self.parent: GroupScope | None = parent_group or current_group()
        owner = flow or (self.parent.flow if self.parent else None) or current_flow()
        if owner is None:
            raise DefinitionError(f"task group {group_id!r} must be created inside a flow")
        self.flow: FlowScope = owner
        self.group_id = self.parent.child_id(group_id) if self.parent else group_id
        self.prefix_group_id = prefix_group_id
        self.tooltip = tooltip
        self.default_args: dict[str, Any] = {
            **(self.parent.default_args if self.parent else {}),
            **(default_args or {}),
        }
        self.members: list[BaseOperator] = []
        self._token: Any = None
        self.flow.add_group(self)

    def child_id(self, task_id: str) -> str:
        return f"{self.group_id}.{task_id}" if self.prefix_group_id else task_id

    def add(self, op: BaseOperator) -> None:
        self.members.append(op)
        if self.parent is not None:
            self.parent.add(op)

    def dependency_roots(self) -> list[BaseOperator]:
        ids = {m.task_id for m in self.members}
        return [m for m in self.members if not any(u in ids for u in m.upstream_task_ids)]

    def dependency_leaves(self) -> list[BaseOperator]:
        ids = {m.task_id for m in self.members}
        return [m for m in self.members if not any(d in ids for d in m.downstream_task_ids)]

    def describe(self) -> dict[str, Any]:
        return {
            "parent": self.parent.group_id if self.parent else None,
            "tooltip": self.tooltip,
        }

    def __enter__(self) -> TaskGroup:
        self._token = push_group(self)
        return self

    def __exit__(self, *exc: object) -> None:
        pop_group(self._token)

    def __repr__(self) -> str:
        return f"<TaskGroup {self.group_id!r}>"
