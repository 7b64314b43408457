"""How dependencies between tasks are written: ``a >> b``, ``a << b``, lists, ``chain``.

Everything ends in ``set_dependency``, which accepts operators, task groups and the outputs of
decorated tasks (all ``DependencyMixin``) and refuses anything else with an error that names
the task and what it was given. This module knows operators only as ``Linkable`` (anything
with a task id that can take an upstream), so the operator, the task group and the task output
can all build on it without knowing each other.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

from ductwork.core.definition_context import caller_site
from ductwork.errors import InvalidDependencyError


class Linkable(Protocol):
    """One end of an edge: an operator, as ``set_dependency`` sees it."""

    @property
    def task_id(self) -> str: ...

    def add_upstream(self, other: Any) -> None: ...


class DependencyMixin:
    """Anything that can stand on either side of ``>>``: operators, groups, task outputs."""

    def dependency_roots(self) -> Sequence[Linkable]:
        """The operators that become downstream when this stands on the right of ``>>``."""
        raise NotImplementedError

    def dependency_leaves(self) -> Sequence[Linkable]:
        """The operators that become upstream when this stands on the left of ``>>``."""
        raise NotImplementedError

    def __rshift__(self, other: Any) -> Any:
        set_dependency(self, other)
        return other

    def __lshift__(self, other: Any) -> Any:
        set_dependency(other, self)
        return other

    def __rrshift__(self, other: Any) -> Any:
        set_dependency(other, self)
        return self

    def __rlshift__(self, other: Any) -> Any:
        set_dependency(self, other)
        return self

    def joined(self, *, upstream: Sequence[Linkable] = (), downstream: Sequence[Linkable] = ()) -> None:
        """Told what ``set_dependency`` put on the other side of it; an edge label
        (``a >> Label("x") >> b``) keeps it until it meets what follows."""

    def set_downstream(self, other: Any) -> None:
        set_dependency(self, other)

    def set_upstream(self, other: Any) -> None:
        set_dependency(other, self)


def _operators(obj: Any, *, leaves: bool, context: str) -> Sequence[Linkable]:
    if isinstance(obj, DependencyMixin):
        return obj.dependency_leaves() if leaves else obj.dependency_roots()
    if isinstance(obj, list | tuple | set | frozenset):
        out: list[Linkable] = []
        for item in obj:
            out.extend(_operators(item, leaves=leaves, context=context))
        return out
    raise InvalidDependencyError(
        f"{context}: cannot depend on {obj!r} ({type(obj).__name__}): dependencies must be tasks, "
        f"task groups, task outputs, or lists of them"
    )


_DRAWING: ContextVar[bool] = ContextVar("ductwork_drawing_edges", default=True)


@contextlib.contextmanager
def edges_already_drawn() -> Iterator[None]:
    """Build operators inside the block without drawing edges: a mapped instance's operator is
    made when its try starts, from the ``partial()`` arguments, and one holding another task's
    output (``add.partial(y=rows()).expand(x=...)``) linked that task to an operator with the
    mapped task's id, which joined the flow as a duplicate of the mapped task and failed every
    instance. Its edges are the mapped task's, drawn when the flow was defined."""
    token = _DRAWING.set(False)
    try:
        yield
    finally:
        _DRAWING.reset(token)


def set_dependency(upstream: Any, downstream: Any) -> None:
    """Make every leaf of ``upstream`` an upstream of every root of ``downstream``."""
    if not _DRAWING.get():
        return
    context = _describe(downstream if isinstance(downstream, DependencyMixin) else upstream)
    ups = _operators(upstream, leaves=True, context=context)
    downs = _operators(downstream, leaves=False, context=context)
    site: tuple[str, int] | None = None
    for down in downs:
        for up in ups:
            down.add_upstream(up)
            sites = getattr(down, "edge_sites", None)
            if isinstance(sites, dict) and up.task_id not in sites:
                site = site or caller_site()
                sites[up.task_id] = site
    if isinstance(downstream, DependencyMixin):
        downstream.joined(upstream=ups)
    if isinstance(upstream, DependencyMixin):
        upstream.joined(downstream=downs)


def _describe(obj: Any) -> str:
    task_id = getattr(obj, "task_id", None) or getattr(obj, "group_id", None)
    return f"task {task_id!r}" if task_id else "dependency"


def chain(*items: Any) -> None:
    """``chain(a, b, [c, d], e)`` is ``a >> b >> [c, d] >> e``; two equal-length lists in a row
    are paired element by element, as in Airflow."""
    for left, right in itertools.pairwise(items):
        if isinstance(left, list | tuple) and isinstance(right, list | tuple):
            if len(left) != len(right):
                raise InvalidDependencyError(
                    f"chain(): adjacent lists must have the same length, got {len(left)} and {len(right)}"
                )
            for up, down in zip(left, right, strict=True):
                set_dependency(up, down)
        else:
            set_dependency(left, right)


def cross_downstream(from_tasks: Sequence[Any], to_tasks: Sequence[Any]) -> None:
    """Every task of ``from_tasks`` upstream of every task of ``to_tasks``."""
    set_dependency(list(from_tasks), list(to_tasks))
