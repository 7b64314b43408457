"""Helpers shared by the routers: looking up a run, path parameters, dates from query strings."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Path
from pydantic import BeforeValidator, StringConstraints

from ductwork.api.context import WebContext
from ductwork.api.slashes import restore_slashes
from ductwork.services import runs as run_service
from ductwork.store.records import RunRecord

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
