import uuid
from datetime import datetime

from pydantic import ConfigDict, Field

from app.core.validation import AwareDatetime, Reference, RequestModel, ResponseModel


class SignpostCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"to_org": "lgsco", "sender_reference": "CQC-1001"}]}
    )

    to_org: str = Field(min_length=1, max_length=32, examples=["cqc"])
    signposted_at: AwareDatetime | None = Field(default=None, description="Defaults to now.")
    sender_reference: Reference | None = None
    contact_reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="One of the receiving body's contact reasons (`GET /v1/routes`); "
        "422 `unknown_contact_reason` otherwise.",
    )


class SignpostRead(ResponseModel):
    id: uuid.UUID
    from_org: str
    to_org: str
    signposted_at: datetime
    sender_reference: str | None
    contact_reason: str | None
    created_at: datetime


class SignpostPage(ResponseModel):
    items: list[SignpostRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
