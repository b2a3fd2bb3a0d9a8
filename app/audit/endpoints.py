from typing import Annotated

from fastapi import APIRouter, Query

from app.audit import service
from app.audit.schemas import AuditEventRead, AuditPage
from app.audit.service import AuditAction, RecordType
from app.core.auth import Admin
from app.core.deps import Session
from app.core.validation import AwareDatetime

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", operation_id="list_audit_events")
async def list_audit_events(
    principal: Admin,
    session: Session,
    action: AuditAction | None = None,
    record_type: RecordType | None = None,
    since: Annotated[
        AwareDatetime | None, Query(description="From this moment (inclusive).")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before this moment.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AuditPage:
    """Your body's audit trail, newest first: who (by key id, or the command line, or the
    service itself) created, published, revoked or purged which record, and when."""
    rows, next_cursor = await service.list_events(
        session,
        principal.body,
        action=action,
        record_type=record_type,
        since=since,
        until=until,
        limit=limit,
        cursor=cursor,
    )
    return AuditPage(
        items=[AuditEventRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )
