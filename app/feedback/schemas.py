import uuid
from datetime import datetime

from pydantic import Field

from app.core.validation import AwareDatetime, LongText, Reference, RequestModel, ResponseModel
from app.feedback.lifecycle import FeedbackState


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
    state: FeedbackState = Field(
        description="`submitted` -> `acknowledged` -> `responded` (closed), by the body it is "
        "about."
    )
    acknowledged_at: datetime | None
    responded_at: datetime | None
    remedial_action: str | None = Field(
        description="What the body it is about did about it (once responded)."
    )
    training_issue: bool | None = Field(
        description="Whether that body found a training issue (once responded)."
    )


class FeedbackPage(ResponseModel):
    items: list[FeedbackRead]
    next_cursor: str | None


class FeedbackResponse(RequestModel):
    """The answer of the body a feedback is about (s.6.2: remedial work, training issues)."""

    remedial_action: LongText = Field(description="What was done about it.")
    training_issue: bool = Field(description="Whether it showed a training issue.")
