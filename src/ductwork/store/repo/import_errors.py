"""Flow files that failed to import: the parser replaces a file's errors after each parse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlalchemy import Connection

from ductwork.store.records import ImportErrorRecord, NewImportError
from ductwork.store.repo._util import chunks
from ductwork.store.tables import import_errors
from ductwork.store.types import utcnow


def replace_import_errors(
    conn: Connection, fileloc: str, errors: Sequence[NewImportError], *, now: dt.datetime | None = None
) -> None:
    """Make ``errors`` the file's import errors (none: the file imports cleanly now)."""
    conn.execute(sa.delete(import_errors).where(import_errors.c.fileloc == fileloc))
    if errors:
        at = now or utcnow()
        rows = [
            {"fileloc": fileloc, "line": e.line, "error": e.error, "traceback": e.traceback, "at": at} for e in errors
        ]
        conn.execute(sa.insert(import_errors), rows)


def replace_many(
    conn: Connection, errors: Mapping[str, Sequence[NewImportError]], *, now: dt.datetime | None = None
) -> None:
    """``replace_import_errors`` for many files, in a few statements."""
    files = sorted(errors)
    for part in chunks(files):
        conn.execute(sa.delete(import_errors).where(import_errors.c.fileloc.in_(list(part))))
    at = now or utcnow()
    rows = [
        {"fileloc": file, "line": e.line, "error": e.error, "traceback": e.traceback, "at": at}
        for file in files
        for e in errors[file]
    ]
    if rows:
        conn.execute(sa.insert(import_errors), rows)


def list_import_errors(conn: Connection, fileloc: str | None = None) -> list[ImportErrorRecord]:
    """Import errors by file, then line."""
    stmt = sa.select(import_errors).order_by(import_errors.c.fileloc, import_errors.c.line, import_errors.c.id)
    if fileloc is not None:
        stmt = stmt.where(import_errors.c.fileloc == fileloc)
    return [ImportErrorRecord(r.id, r.fileloc, r.line, r.error, r.traceback, r.at) for r in conn.execute(stmt)]
