"""Data formats of S3 data nodes (``CSV``, ``TSV``, ``Custom``): rows in and out of text.

As in AWS Data Pipeline, files have no header row; a format's ``column`` values
(``"name STRING"``) name the columns when a copy needs names. Without a data format a data
node is read and written as CSV.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ductwork.declarative.datapipeline.model import PipelineObject
from ductwork.declarative.datapipeline.scope import Scope


@dataclass(frozen=True)
class DataFormat:
    kind: str = "CSV"
    column_separator: str = ","
    record_separator: str = "\n"
    escape_char: str | None = None
    columns: tuple[str, ...] = ()

    @property
    def column_names(self) -> list[str]:
        return [c.split()[0] for c in self.columns if c.strip()]

    def read(self, text: str) -> list[list[str]]:
        if self.kind == "CSV":
            reader = csv.reader(io.StringIO(text), delimiter=",", escapechar=self.escape_char)
            return [row for row in reader if row]
        records = _records(text, self.record_separator, self.escape_char)
        out: list[list[str]] = []
        for record in records:
            if not record.strip("\r"):
                continue
            out.append(_split(record.rstrip("\r"), self.column_separator, self.escape_char))
        return out

    def write(self, rows: Iterable[Sequence[Any]]) -> str:
        if self.kind == "CSV":
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n", escapechar=self.escape_char)
            for row in rows:
                writer.writerow(["" if v is None else v for v in row])
            return buffer.getvalue()
        lines = []
        for row in rows:
            cells = ["" if v is None else str(v) for v in row]
            if self.escape_char:
                # The escape character itself first: "C:\\path" was written as it is and read
                # back as "C:path" (the reader takes a backslash as an escape).
                esc = self.escape_char
                cells = [
                    c.replace(esc, esc + esc)
                    .replace(self.column_separator, esc + self.column_separator)
                    .replace(self.record_separator, esc + self.record_separator)
                    for c in cells
                ]
            lines.append(self.column_separator.join(cells))
        return "".join(line + self.record_separator for line in lines)


def _records(text: str, separator: str, escape: str | None) -> list[str]:
    """``text`` cut at each record separator that is not escaped (kept escaped, for ``_split``)."""
    if not escape:
        return text.split(separator)
    records: list[str] = []
    start = i = 0
    while i < len(text):
        if text[i] == escape and i + 1 < len(text):
            i += 2
            continue
        if text.startswith(separator, i):
            records.append(text[start:i])
            i += len(separator)
            start = i
            continue
        i += 1
    records.append(text[start:])
    return records


def _split(record: str, separator: str, escape: str | None) -> list[str]:
    if not escape:
        return record.split(separator)
    cells: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(record):
        if record[i] == escape and i + 1 < len(record):
            current.append(record[i + 1])
            i += 2
            continue
        if record.startswith(separator, i):
            cells.append("".join(current))
            current = []
            i += len(separator)
            continue
        current.append(record[i])
        i += 1
    cells.append("".join(current))
    return cells


def _unescape(text: str) -> str:
    return text.encode("utf-8").decode("unicode_escape") if "\\" in text else text


def data_format(obj: PipelineObject | None, scope: Scope) -> DataFormat:
    """The format object as a ``DataFormat`` (CSV when there is none)."""
    if obj is None:
        return DataFormat()
    columns = tuple(scope.texts(obj, "column"))
    escape = scope.text(obj, "escapeChar") or None
    if obj.type == "CSV":
        return DataFormat("CSV", escape_char=escape, columns=columns)
    default_sep = "\t" if obj.type == "TSV" else ","
    return DataFormat(
        obj.type or "Custom",
        column_separator=_unescape(scope.text(obj, "columnSeparator") or default_sep),
        record_separator=_unescape(scope.text(obj, "recordSeparator") or "\n"),
        escape_char=escape,
        columns=columns,
    )
