import uuid
from datetime import datetime

from pydantic import Field

from app.core.auth import Role
from app.core.validation import KeyName, RequestModel, ResponseModel


class KeyCreate(RequestModel):
    role: Role
    name: KeyName


class KeyRead(ResponseModel):
    id: uuid.UUID
    org: str
    role: Role
    name: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyRead):
    secret: str


class KeyPage(ResponseModel):
    items: list[KeyRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
