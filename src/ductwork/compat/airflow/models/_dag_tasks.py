"""``dag.tasks`` of an Airflow DAG: the list of its operators, as Airflow gives it, that is also
the flow's table of tasks by id.

A DAG file's integrity tests write ``[t.task_id for t in dag.tasks]``, ``dag.tasks[0]`` and
``for task in dag.tasks: assert task.retries``; Ductwork (the flow, the engine, the CLI) reads
the same attribute as a dict by task id (``tasks[task_id]``, ``.get``, ``.items()``,
``task_id in tasks``). This dict iterates over its operators and takes integer indexes and
slices, so both readings hold; its keys are ``.keys()`` (or ``dag.task_dict``, a plain dict).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


class DagTasks(dict[str, Any]):
    """The DAG's operators by task id; iterated, indexed and compared like Airflow's list."""

    def __iter__(self) -> Iterator[Any]:
        return iter(self.values())

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int | slice):
            return list(self.values())[key]
        return super().__getitem__(key)

    def __contains__(self, item: object) -> bool:
        """A task id, or an operator of this DAG (``task in dag.tasks``)."""
        if isinstance(item, str):
            return super().__contains__(item)
        return any(op is item for op in self.values())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list | tuple):
            return list(self.values()) == list(other)
        return super().__eq__(other)

    def __reversed__(self) -> Iterator[Any]:
        return reversed(list(self.values()))

    def __repr__(self) -> str:
        return repr(list(self.values()))

    def copy(self) -> dict[str, Any]:
        """A plain dict by task id (what code that copies the flow's table expects)."""
        return dict(self.items())


__all__ = ["DagTasks"]
