"""``airflow.utils.edgemodifier.Label``: a label on the edges it stands between."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ductwork.core.dependencies import DependencyMixin, Linkable, _operators, set_dependency


class Label(DependencyMixin):
    """``a >> Label("yes") >> b`` is ``a >> b``, the edge named "yes"."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._left: list[Linkable] = []

    def dependency_roots(self) -> list[Linkable]:
        return []

    def dependency_leaves(self) -> list[Linkable]:
        return list(self._left)

    def joined(self, *, upstream: Sequence[Linkable] = (), downstream: Sequence[Linkable] = ()) -> None:
        """``task >> label`` is the task's ``__rshift__`` (``task << label`` its ``__lshift__``),
        which links the task to the label's (empty) ends and says so here."""
        if upstream:
            self._left = list(upstream)
        if downstream:
            self._left = list(downstream)

    def __rrshift__(self, other: Any) -> Label:
        """``a >> label``: remember ``a`` until the label meets what follows it."""
        self._left = list(_operators(other, leaves=True, context=f"Label({self.label!r})"))
        return self

    def __rshift__(self, other: Any) -> Any:
        set_dependency(self._left, other)
        return other

    def __rlshift__(self, other: Any) -> Label:
        """``b << label``: ``other`` is downstream of what comes after the label."""
        self._left = list(_operators(other, leaves=False, context=f"Label({self.label!r})"))
        return self

    def __lshift__(self, other: Any) -> Any:
        set_dependency(other, self._left)
        return other


__all__ = ["Label"]
