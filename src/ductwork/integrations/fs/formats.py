"""How a ``FileTarget``'s bytes become Python values and back: text, JSON, CSV and Parquet.

A format reads from and writes to a binary file object, so the same format works on every
storage. ``resolve_format`` picks one by name, instance or file suffix.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any, ClassVar

from ductwork.errors import DuctworkError, did_you_mean
from ductwork.integrations._deps import require


class Format:
    """Turns one Python value into a file's bytes (``dump``) and back (``load``)."""

    name: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()

    def dump(self, obj: Any, fh: IO[bytes]) -> None:
        raise NotImplementedError

    def load(self, fh: IO[bytes]) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class _Text(io.TextIOWrapper):
    """A text view of a binary file that leaves the binary file open when it goes away."""

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self.detach()


class TextFormat(Format):
    """The file as one string."""

    name = "text"
    suffixes = (".txt", ".log", ".md", ".sql", ".html")

    def __init__(self, encoding: str = "utf-8") -> None:
        self.encoding = encoding

    def dump(self, obj: Any, fh: IO[bytes]) -> None:
        fh.write(str(obj).encode(self.encoding))

    def load(self, fh: IO[bytes]) -> str:
        return fh.read().decode(self.encoding)


def json_default(value: Any) -> Any:
    """JSON for the values databases and APIs hand back: dates as ISO strings, decimals as numbers."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class JsonFormat(Format):
    """One JSON document; dates and decimals are written as ISO strings and numbers."""

    name = "json"
    suffixes = (".json",)

    def __init__(self, indent: int | None = None, sort_keys: bool = False) -> None:
        self.indent = indent
        self.sort_keys = sort_keys

    def dump(self, obj: Any, fh: IO[bytes]) -> None:
        text = json.dumps(obj, indent=self.indent, sort_keys=self.sort_keys, default=json_default)
        fh.write(text.encode("utf-8"))

    def load(self, fh: IO[bytes]) -> Any:
        return json.loads(fh.read().decode("utf-8"))


class CsvFormat(Format):
    """Rows as dictionaries. Columns are ``fieldnames`` or the keys of the rows in order of first
    appearance; values read back are strings (CSV has no types)."""

    name = "csv"
    suffixes = (".csv", ".tsv")

    def __init__(self, fieldnames: Sequence[str] | None = None, delimiter: str = ",", encoding: str = "utf-8") -> None:
        self.fieldnames = list(fieldnames) if fieldnames is not None else None
        self.delimiter = delimiter
        self.encoding = encoding

    def dump(self, obj: Iterable[Mapping[str, Any]], fh: IO[bytes]) -> None:
        rows = list(obj)
        fieldnames = self.fieldnames or list(dict.fromkeys(key for row in rows for key in row))
        text = _Text(fh, encoding=self.encoding, newline="")
        try:
            writer = csv.DictWriter(text, fieldnames=fieldnames, delimiter=self.delimiter)
            writer.writeheader()
            writer.writerows(rows)
        finally:
            text.close()

    def load(self, fh: IO[bytes]) -> list[dict[str, str]]:
        text = _Text(fh, encoding=self.encoding, newline="")
        try:
            return list(csv.DictReader(text, delimiter=self.delimiter))
        finally:
            text.close()


class ParquetFormat(Format):
    """Parquet through pyarrow (``pip install 'ductwork[parquet]'``).

    ``dump`` takes a ``pyarrow.Table`` or rows as dictionaries; ``load`` returns rows as
    dictionaries, or the ``pyarrow.Table`` with ``as_table=True``.
    """

    name = "parquet"
    suffixes = (".parquet", ".pq")

    def __init__(self, compression: str = "snappy", as_table: bool = False) -> None:
        self.compression = compression
        self.as_table = as_table

    def dump(self, obj: Any, fh: IO[bytes]) -> None:
        pa = require("pyarrow", extra="parquet", what="ParquetFormat")
        pq = require("pyarrow.parquet", extra="parquet", what="ParquetFormat")
        table = obj if isinstance(obj, pa.Table) else pa.Table.from_pylist(list(obj))
        pq.write_table(table, fh, compression=self.compression)

    def load(self, fh: IO[bytes]) -> Any:
        pq = require("pyarrow.parquet", extra="parquet", what="ParquetFormat")
        table = pq.read_table(io.BytesIO(fh.read()))
        return table if self.as_table else table.to_pylist()


FORMATS: dict[str, type[Format]] = {f.name: f for f in (TextFormat, JsonFormat, CsvFormat, ParquetFormat)}


def resolve_format(value: str | Format | None, path: str) -> Format:
    """A format from its name, an instance, or (``None``) the suffix of ``path`` (text otherwise)."""
    if isinstance(value, Format):
        return value
    if isinstance(value, str):
        cls = FORMATS.get(value.lower())
        if cls is None:
            raise DuctworkError(
                f"unknown file format {value!r} for {path!r}: use one of {', '.join(FORMATS)} or a Format instance."
                f"{did_you_mean(value, FORMATS)}"
            )
        if cls is CsvFormat and path.lower().endswith(".tsv"):
            return CsvFormat(delimiter="\t")
        return cls()
    if value is not None:
        raise DuctworkError(f"format for {path!r} must be a name or a Format instance, got {value!r}")
    lowered = path.lower()
    for cls in FORMATS.values():
        if lowered.endswith(cls.suffixes):
            return CsvFormat(delimiter="\t") if lowered.endswith(".tsv") else cls()
    return TextFormat()
