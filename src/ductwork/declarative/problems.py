"""What is wrong with a declarative pipeline, said so that the user can find it.

Validation collects every problem of a definition before giving up (``ductwork pipelines
validate`` prints them all at once); each names the object id and the field, the position in
the field for an expression, and the line of the file when it is known.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ductwork.errors import DefinitionError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition."""

    message: str
    object_id: str | None = None
    field: str | None = None
    position: int | None = None
    """Offset (0-based) in the field's text, for an expression error."""
    line: int | None = None
    kind: str = "object"
    """What ``object_id`` names: an ``object`` of an AWS definition, a ``task`` or the
    ``parameter`` of a Ductwork pipeline file."""

    def where(self) -> str:
        parts = []
        if self.object_id is not None:
            parts.append(f"{self.kind} {self.object_id!r}")
        if self.field is not None:
            parts.append(f"field {self.field!r}")
        if self.position is not None:
            parts.append(f"position {self.position + 1}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message

    def located(self) -> str:
        """The problem with its line first (``line 8: task 'a': ...``), when the line is known."""
        return f"line {self.line}: {self}" if self.line is not None else str(self)

    def to_dict(self) -> dict[str, object]:
        return {
            "object": self.object_id,
            "field": self.field,
            "position": None if self.position is None else self.position + 1,
            "line": self.line,
            "message": self.message,
        }


class PipelineDefinitionError(DefinitionError):
    """A declarative pipeline that cannot be accepted; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{source}: {count} problem{'s' if count != 1 else ''} in the pipeline definition"
        super().__init__(head + "".join(f"\n  - {p.located()}" for p in self.problems))

    @property
    def first_line(self) -> int | None:
        return next((p.line for p in self.problems if p.line is not None), None)
