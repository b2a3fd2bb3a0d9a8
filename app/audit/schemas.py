import uuid
from datetime import datetime

from pydantic import Field

from app.audit.service import ActorKind, AuditAction, RecordType
from app.core.validation import ResponseModel


class AuditEventRead(ResponseModel):
    id: uuid.UUID
    org: str
    actor: ActorKind = Field(
        description="`key` (an API key, see actor_key_id), `cli` (an operator at the command "
        "line) or `system` (the service's own schedule)."
    )
    actor_key_id: uuid.UUID | None
    action: AuditAction
    record_type: RecordType
    record_id: uuid.UUID
    at: datetime


class AuditPage(ResponseModel):
    items: list[AuditEventRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
