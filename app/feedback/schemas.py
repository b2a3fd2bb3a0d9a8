import uuid
from datetime import datetime

from pydantic import Field

from app.core.validation import AwareDatetime, LongText, Reference, RequestModel, ResponseModel


class FeedbackCreate(RequestModel):
    """The fields section 6.2 asks for, about a call the other body misdirected or mis-advised."""

    about_org: str = Field(min_length=1, max_length=32, examples=["lgsco"])
    case_references: list[Reference] = Field(min_length=1, max_length=20)
    reason_for_contact: LongText
    names_and_times: LongText
    correct_advice: LongText
    suggested_action: LongText
    occurred_at: AwareDatetime | None = None


class FeedbackRead(ResponseModel):
    id: uuid.UUID
    from_org: str
    about_org: str
    case_references: list[str]
    reason_for_contact: str
    names_and_times: str
    correct_advice: str
    suggested_action: str
    occurred_at: datetime | None
    mailbox: str = Field(description="Where the feedback email goes.")
    submitted_at: datetime


class FeedbackPage(ResponseModel):
    items: list[FeedbackRead]
    next_cursor: str | None
