"""``commandOptions`` of a ``RedshiftCopyActivity``: the options of Redshift's ``COPY`` that say
how the S3 input is read.

On AWS the activity hands these words to ``COPY``, and they decide how the files are read:
AWS's own billing template has ``["GZIP", "CSV", "IGNOREHEADER AS 1"]`` for gzip-compressed CSV
with a header row. Ductwork reads the files itself, so it reads them as ``COPY`` would: the
options that shape the data (compression, CSV or delimited text, the header, NULLs) are honoured;
those that only tune the load on a Redshift cluster (``TRUNCATECOLUMNS``, ``MAXERROR``,
``COMPUPDATE``, ``REGION``, credentials...) are accepted and have no effect; a format Ductwork
cannot read (``JSON``, ``PARQUET``, ``FIXEDWIDTH``...) or a word ``COPY`` does not know is a
problem of the definition, naming the option, before anything runs. As AWS documents, the
options are ignored when the input or output data node has a ``dataFormat``.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

_TOKEN = re.compile(r"\s*(?:'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"|([^\s'\"]+))")

_FLAGS = {"CSV", "GZIP", "BZIP2", "EMPTYASNULL", "BLANKSASNULL", "REMOVEQUOTES", "ESCAPE", "IGNOREBLANKLINES"}
_WITH_VALUE = {"DELIMITER", "IGNOREHEADER", "NULL", "QUOTE"}

# Options that tune the load on a Redshift cluster, or give AWS what it needs to reach S3:
# the rows read are the same without them. The number says how many values follow the word.
_NO_EFFECT: dict[str, int] = {
    "ACCEPTANYDATE": 0,
    "ACCEPTINVCHARS": -1,  # an optional replacement character
    "COMPROWS": 1,
    "COMPUPDATE": -1,
    "CREDENTIALS": 1,
    "DATEFORMAT": 1,
    "ENCODING": 1,
    "EXPLICIT_IDS": 0,
    "FILLRECORD": 0,
    "IAM_ROLE": 1,
    "MAXERROR": 1,
    "NOLOAD": 0,
    "REGION": 1,
    "ROUNDEC": 0,
    "STATUPDATE": -1,
    "TIMEFORMAT": 1,
    "TRIMBLANKS": 0,
    "TRUNCATECOLUMNS": 0,
    "ACCESS_KEY_ID": 1,
    "SECRET_ACCESS_KEY": 1,
    "SESSION_TOKEN": 1,
}

_NOT_READ = {
    "JSON": "JSON input",
    "AVRO": "Avro input",
    "PARQUET": "Parquet input",
    "ORC": "ORC input",
    "FIXEDWIDTH": "fixed-width input",
    "SHAPEFILE": "shapefile input",
    "LZOP": "lzop compression",
    "ZSTD": "zstd compression",
    "MANIFEST": "manifest files",
    "SSH": "input over SSH",
}


@dataclass(frozen=True)
class CopyOptions:
    """How ``COPY`` reads the files, as ``commandOptions`` set it."""

    compression: str | None = None
    """``gzip`` or ``bzip2``."""
    csv: bool = False
    quote: str = '"'
    delimiter: str | None = None
    """The column separator; ``|`` for text and ``,`` for CSV when not given (``COPY``'s)."""
    ignore_header: int = 0
    null_as: str | None = None
    """Fields equal to it are NULL; ``\\N`` for text when not given (``COPY``'s)."""
    empty_as_null: bool = False
    blanks_as_null: bool = False
    remove_quotes: bool = False
    escape: bool = False
    no_effect: tuple[str, ...] = field(default=())
    """The options accepted that change nothing here, for the task's log."""

    def read(self, data: bytes) -> list[list[str | None]]:
        """The rows of one file."""
        if self.compression == "gzip":
            data = gzip.decompress(data)
        elif self.compression == "bzip2":
            data = bz2.decompress(data)
        text = data.decode("utf-8")
        if self.ignore_header:
            lines = text.split("\n")
            text = "\n".join(lines[self.ignore_header :])
        rows = self._csv(text) if self.csv else self._text(text)
        return [[self._value(cell) for cell in row] for row in rows]

    def _csv(self, text: str) -> list[list[str]]:
        reader = csv.reader(io.StringIO(text), delimiter=self.delimiter or ",", quotechar=self.quote)
        return [row for row in reader if row]

    def _text(self, text: str) -> list[list[str]]:
        separator = self.delimiter or "|"
        rows: list[list[str]] = []
        for line in _records(text, escaped=self.escape):
            if not line.strip("\r"):
                continue
            cells = _split(line.rstrip("\r"), separator, escaped=self.escape)
            if self.remove_quotes:
                cells = [c[1:-1] if len(c) >= 2 and c[0] == c[-1] and c[0] in "'\"" else c for c in cells]
            rows.append(cells)
        return rows

    def _value(self, cell: str) -> str | None:
        null = self.null_as if self.null_as is not None else (None if self.csv else "\\N")
        if null is not None and cell == null:
            return None
        if self.empty_as_null and cell == "":
            return None
        if self.blanks_as_null and cell != "" and not cell.strip():
            return None
        return cell


def _records(text: str, *, escaped: bool) -> list[str]:
    """Lines of delimited text; with ``ESCAPE`` a backslash before a newline keeps it in the
    field."""
    if not escaped:
        return text.split("\n")
    records: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == "\n":
            records.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    records.append("".join(current))
    return records


def _split(line: str, separator: str, *, escaped: bool) -> list[str]:
    if not escaped:
        return line.split(separator)
    cells: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            current.append(line[i + 1])
            i += 2
            continue
        if line.startswith(separator, i):
            cells.append("".join(current))
            current = []
            i += len(separator)
            continue
        current.append(line[i])
        i += 1
    cells.append("".join(current))
    return cells


def _tokens(text: str) -> list[tuple[str, bool]]:
    """Words and quoted values of one option text: ``(text, quoted)``."""
    out: list[tuple[str, bool]] = []
    pos = 0
    text = text.strip().rstrip(";")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise ValueError(f"cannot read {text[pos:]!r}")
        single, double, word = match.groups()
        if word is not None:
            out.append((word, False))
        else:
            value = single if single is not None else double
            assert value is not None
            quote = "'" if single is not None else '"'
            out.append((value.replace(quote * 2, quote), True))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _unescape(value: str) -> str:
    """``'\\t'`` as COPY reads it: a tab."""
    return {"\\t": "\t", "\\n": "\n", "\\\\": "\\", "\\|": "|"}.get(value, value)


class CopyOptionsError(ValueError):
    """What is wrong in ``commandOptions``: one message per option it cannot take."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


_FLAG_FIELDS = {
    "CSV": "csv",
    "EMPTYASNULL": "empty_as_null",
    "BLANKSASNULL": "blanks_as_null",
    "REMOVEQUOTES": "remove_quotes",
    "ESCAPE": "escape",
}


def parse(items: Sequence[str]) -> CopyOptions:
    """The options written in ``commandOptions`` (one or several per item, as ``COPY`` takes
    them); ``CopyOptionsError`` names each option it cannot take."""
    flags: dict[str, bool] = {}
    compression: str | None = None
    values: dict[str, str] = {}
    ignore_header = 0
    no_effect: list[str] = []
    errors: list[str] = []
    tokens: list[tuple[str, bool]] = []
    for item in items:
        try:
            tokens.extend(_tokens(item))
        except ValueError as exc:
            errors.append(str(exc))
    i = 0
    while i < len(tokens):
        word, quoted = tokens[i]
        name = word.upper()
        i += 1
        if quoted:
            errors.append(f"{word!r} is a value with no option before it")
        elif name in _NOT_READ:
            errors.append(f"{name}: Ductwork does not read {_NOT_READ[name]}; give the data as CSV or delimited text")
            if i < len(tokens) and tokens[i][1]:
                i += 1  # JSON 'auto': its value goes with it
        elif name in _NO_EFFECT:
            count = _NO_EFFECT[name]
            if i < len(tokens) and tokens[i][0].upper() == "AS":
                i += 1
                count = max(count, 1)
            if count < 0:
                following = tokens[i] if i < len(tokens) else ("", False)
                count = 1 if following[1] or following[0].upper() in ("ON", "OFF", "TRUE", "FALSE") else 0
            no_effect.append(" ".join([name, *(t for t, _ in tokens[i : i + count])]))
            i += count
        elif name in ("GZIP", "BZIP2"):
            compression = name.lower()
        elif name in _FLAG_FIELDS:
            flags[_FLAG_FIELDS[name]] = True
        elif name == "IGNOREBLANKLINES":
            pass  # blank lines are always skipped
        elif name in _WITH_VALUE:
            if i < len(tokens) and not tokens[i][1] and tokens[i][0].upper() == "AS":
                i += 1
            if i >= len(tokens):
                errors.append(f"{name} needs a value")
                break
            value, value_quoted = tokens[i]
            i += 1
            if name == "IGNOREHEADER":
                try:
                    ignore_header = int(value)
                except ValueError:
                    errors.append(f"IGNOREHEADER wants a number of lines, got {value!r}")
            elif not value_quoted:
                errors.append(f"{name} wants a quoted value, as {name} '{value}'")
            elif name == "DELIMITER" and not value:
                errors.append("DELIMITER cannot be empty")
            elif name == "QUOTE" and len(_unescape(value)) != 1:
                errors.append(f"QUOTE wants one character, got {value!r}")
            else:
                values[name] = _unescape(value)
        else:
            errors.append(f"{word!r} is not an option of COPY that Ductwork knows")
    if "QUOTE" in values and not flags.get("csv"):
        errors.append("QUOTE is an option of CSV: write CSV QUOTE AS '...'")
    if flags.get("csv") and (flags.get("escape") or flags.get("remove_quotes")):
        errors.append("ESCAPE and REMOVEQUOTES cannot be used with CSV (COPY refuses them too)")
    if errors:
        raise CopyOptionsError(errors)
    return CopyOptions(
        compression=compression,
        csv=flags.get("csv", False),
        quote=values.get("QUOTE", '"'),
        delimiter=values.get("DELIMITER"),
        ignore_header=ignore_header,
        null_as=values.get("NULL"),
        empty_as_null=flags.get("empty_as_null", False),
        blanks_as_null=flags.get("blanks_as_null", False),
        remove_quotes=flags.get("remove_quotes", False),
        escape=flags.get("escape", False),
        no_effect=tuple(no_effect),
    )
