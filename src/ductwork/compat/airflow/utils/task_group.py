"""``airflow.utils.task_group.TaskGroup``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ductwork.core.task_group import TaskGroup as _TaskGroup


class TaskGroup(_TaskGroup):
    """A named box of tasks (ids ``group.task``), usable on either side of ``>>``."""

    def __init__(
        self,
        group_id: str | None,
        prefix_group_id: bool = True,
        parent_group: Any = None,
        dag: Any = None,
        default_args: Mapping[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
        group_display_name: str = "",
    ) -> None:
        from ductwork.core.definition_context import current_flow, current_group

        owner = dag or (parent_group.flow if parent_group is not None else None) or current_flow()
        base = group_id or "group"
        if add_suffix_on_collision and owner is not None:
            parent = parent_group or current_group()
            full = (lambda g: parent.child_id(g)) if parent is not None else (lambda g: g)
            n = 0
            candidate = base
            while full(candidate) in getattr(owner, "groups", {}):
                n += 1
                candidate = f"{base}__{n}"
            base = candidate
        super().__init__(
            base,
            prefix_group_id=prefix_group_id,
            tooltip=tooltip,
            default_args=default_args,
            flow=dag,
            parent_group=parent_group,
        )

    @property
    def label(self) -> str:
        return self.group_id.rsplit(".", 1)[-1]

    @property
    def children(self) -> dict[str, Any]:
        return {m.task_id: m for m in self.members}

    def get_child_by_label(self, label: str) -> Any:
        return self.children[self.child_id(label)]

    @property
    def roots(self) -> list[Any]:
        """The group's tasks with no upstream task in the group (what ``task >> group`` links to)."""
        return list(self.dependency_roots())

    @property
    def leaves(self) -> list[Any]:
        """The group's tasks with no downstream task in the group (what ``group >> task`` links from)."""
        return list(self.dependency_leaves())

    def get_roots(self) -> Iterator[Any]:
        yield from self.roots

    def get_leaves(self) -> Iterator[Any]:
        yield from self.leaves


__all__ = ["TaskGroup"]
