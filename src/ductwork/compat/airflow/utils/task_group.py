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

        if isinstance(parent_group, RootTaskGroup):  # parent_group=dag.task_group: a top-level group
            dag, parent_group = dag or parent_group.dag, None
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
        """The group's own tasks and task groups (not theirs) by id, as Airflow's."""
        return _children(self.flow, self)

    def get_child_by_label(self, label: str) -> Any:
        return self.children[self.child_id(label)]

    def get_task_group_dict(self) -> dict[str | None, Any]:
        """This group and the groups inside it, by group id."""
        return {gid: g for gid, g in _all_groups(self.flow).items() if gid == self.group_id or _inside(g, self)}

    def __iter__(self) -> Iterator[Any]:
        """Every task of the group, those of its inner groups included."""
        yield from _iter_tasks(self.flow, self.children)

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


class RootTaskGroup:
    """``dag.task_group``: the DAG's root group (``group_id`` ``None``), whose children are the
    tasks and groups not inside another group. DAG files pass it as ``parent_group=`` (a
    top-level group) and read ``children``, ``get_child_by_label`` and ``get_task_group_dict()``."""

    group_id: str | None = None
    label: str | None = None
    is_root = True
    prefix_group_id = True
    tooltip = ""

    def __init__(self, dag: Any) -> None:
        self.dag = dag
        self.flow = dag
        self.default_args: dict[str, Any] = {}

    @property
    def dag_id(self) -> str:
        return str(self.dag.flow_id)

    def child_id(self, label: str) -> str:
        return label

    def add(self, op: Any) -> None:
        """A task given ``task_group=dag.task_group`` is a top-level task: nothing to record."""

    @property
    def children(self) -> dict[str, Any]:
        return _children(self.dag, None)

    def get_child_by_label(self, label: str) -> Any:
        return self.children[label]

    def get_task_group_dict(self) -> dict[str | None, Any]:
        """Every group of the DAG by group id, this one under ``None``, as Airflow's."""
        groups: dict[str | None, Any] = {None: self}
        groups.update(_all_groups(self.dag))
        return groups

    @property
    def roots(self) -> list[Any]:
        return [t for t in self.dag.tasks.values() if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[Any]:
        return [t for t in self.dag.tasks.values() if not t.downstream_task_ids]

    def get_roots(self) -> Iterator[Any]:
        yield from self.roots

    def get_leaves(self) -> Iterator[Any]:
        yield from self.leaves

    def __iter__(self) -> Iterator[Any]:
        yield from _iter_tasks(self.flow, self.children)

    def __repr__(self) -> str:
        return f"<TaskGroup: root of {self.dag_id}>"


def _parent(group: Any) -> Any:
    return getattr(group, "parent", None)


def _children(dag: Any, group: Any) -> dict[str, Any]:
    """The tasks whose innermost group is ``group`` and the groups right inside it, in the
    order they were defined (``group`` ``None``: the top level)."""
    own = getattr(group, "group_id", None)
    found: dict[str, Any] = {}
    for task_id, task in dag.tasks.items():
        inner = getattr(task, "task_group", None)
        if getattr(inner, "group_id", None) == own:
            found[task_id] = task
    for gid, sub in _all_groups(dag).items():
        if getattr(_parent(sub), "group_id", None) == own:
            found[gid] = sub
    return found


def _all_groups(dag: Any) -> dict[str, Any]:
    return dict(getattr(dag, "groups", {}))


def _inside(group: Any, outer: Any) -> bool:
    parent = _parent(group)
    while parent is not None:
        if parent is outer:
            return True
        parent = _parent(parent)
    return False


def _iter_tasks(dag: Any, children: Mapping[str, Any]) -> Iterator[Any]:
    """The tasks among ``children`` and, for a group among them, the tasks inside it."""
    for child in children.values():
        if hasattr(child, "members"):  # a task group, the shim's or one @task_group made
            yield from _iter_tasks(dag, _children(dag, child))
        else:
            yield child


__all__ = ["RootTaskGroup", "TaskGroup"]
