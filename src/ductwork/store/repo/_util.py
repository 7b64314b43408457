"""Small helpers shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import CursorResult

T = TypeVar("T")

IN_CHUNK = 500
"""Ids per ``IN (...)`` clause: far below every backend's bound-parameter limit."""


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def closure(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    """Every id reachable from ``start`` along ``edges`` (not including ``start`` itself unless
    a path leads back to it)."""
    seen: set[str] = set()
    stack = list(start)
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def inserted_pk(result: CursorResult[Any]) -> int:
    """The integer primary key of the row a single-row INSERT created."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:  # pragma: no cover - every insert here has an autoincrement key
        raise RuntimeError("the database did not report the new row's primary key")
    return int(key[0])
