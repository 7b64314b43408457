"""The audit log, for admins: who changed what, when and from where."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from ductwork.api import schemas
from ductwork.api.context import WebContext, web_context
from ductwork.api.routes._common import ERRORS, ID_PATTERN, MAX_OFFSET, utc
from ductwork.api.security import Admin
from ductwork.services import audit

router = APIRouter(tags=["audit"], responses=ERRORS)


@router.get("/audit", response_model=schemas.AuditPage, dependencies=[Admin])
def audit_log(
    ctx: WebContext = Depends(web_context),
    actor: str | None = Query(None, max_length=250, pattern=ID_PATTERN, description="Who (a user name)."),
    action: str | None = Query(
        None, max_length=64, pattern=ID_PATTERN, description="An action (run.delete) or a family (run, run.)."
    ),
    via: str | None = Query(None, pattern="^(cli|api|ui|scheduler)$"),
    target: str | None = Query(None, max_length=500, pattern=ID_PATTERN, description="Targets starting with this."),
    since: schemas.SaneDate | None = Query(None, description="From (included); without an offset, UTC."),
    until: schemas.SaneDate | None = Query(None, description="Until (excluded); without an offset, UTC."),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
) -> schemas.AuditPage:
    """Changes made through the CLI, the API and the UI (and the scheduler's retention), newest
    first. Details never hold a secret."""
    page = audit.entries(
        ctx.engine,
        actor=actor,
        action=action,
        via=via,
        target=target,
        since=utc(since),
        until=utc(until),
        limit=limit,
        offset=offset,
    )
    return schemas.AuditPage(
        items=[schemas.audit_out(e) for e in page.items], total=page.total, limit=page.limit, offset=page.offset
    )
