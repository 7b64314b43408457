"""Helpers shared by the routers: looking up a run, path parameters, dates from query strings."""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Sequence
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Path
from pydantic import BeforeValidator, StringConstraints
from sqlalchemy import Connection

from ductwork.api.context import WebContext
from ductwork.api.slashes import restore_slashes
from ductwork.errors import ParameterError
from ductwork.services import runs as run_service
from ductwork.store.records import RunRecord
from ductwork.store.tables import runs

ID_PATTERN = r"^[^\x00]*$"
"""Ids may hold any character but NUL, which PostgreSQL cannot store in text."""
MAX_OFFSET = 1_000_000_000

_Slashes = BeforeValidator(lambda v: restore_slashes(v) if isinstance(v, str) else v)
"""A ``/`` inside an id arrives as ``%2F`` (see ``ductwork.api.slashes``)."""

_IdText = StringConstraints(min_length=1, max_length=250, pattern=ID_PATTERN)
"""Checked on the id itself, after ``_Slashes``: constraints given to ``Path`` would apply to
the validator's output as to a list ("Value should have at most 250 items")."""


FlowId = Annotated[str, _IdText, _Slashes, Path(description="A flow id.")]
RunId = Annotated[str, _IdText, _Slashes, Path(description="A run id (URL-encoded).")]
TaskId = Annotated[str, _IdText, _Slashes, Path(description="A task id (URL-encoded: '/' as %2F).")]
Name = Annotated[str, _IdText, _Slashes, Path(description="A name (URL-encoded).")]
"""A pool's, user's, variable's or connection's name in a path: a ``/`` in it arrives as ``%2F``."""

RunType = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=ID_PATTERN)]
"""A run type in a filter (manual, scheduled, backfill...: an open set, so not an enum). Checked
for NUL: PostgreSQL refuses it in a query's parameters, which was a 500."""

RUN_TYPES = ("manual", "scheduled", "backfill", "event", "asset_triggered", "build", "test")
"""The run types Ductwork records: triggered (API, UI, ``ductwork trigger``, ``ductwork run``),
by the schedule, by a backfill, by a message, by asset updates, by ``ductwork build``, and by
``ductwork.testing``."""


def check_run_types(conn: Connection, run_types: Sequence[str] | None) -> None:
    """Refuse a run type filter that no run can match: ``?run_type=schedule`` answered an empty
    page, which reads as "no such runs" rather than as the typo it is. A type the database holds
    runs of is taken even when Ductwork does not record it any more (the set is open)."""
    unknown = [t for t in run_types or () if t not in RUN_TYPES]
    if not unknown:
        return
    stored = set(conn.execute(sa.select(runs.c.run_type).distinct()).scalars())
    for name in unknown:
        if name in stored:
            continue
        choices = sorted(set(RUN_TYPES) | stored)
        close = difflib.get_close_matches(name, choices, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ParameterError(f"run_type {name!r} is not a run type ({hint}run types: {', '.join(choices)})")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated"},
    403: {"description": "Not allowed for this role, or CSRF token missing"},
    404: {"description": "Unknown flow, run or task"},
}


def find_run(ctx: WebContext, flow_id: str, run_id: str) -> RunRecord:
    """The run, or ``NotFoundError`` (404) with the flow's recent runs as a hint."""
    return run_service.get_run(ctx.engine, flow_id, run_id)


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A query-string date as aware UTC (dates without a zone are taken as UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
