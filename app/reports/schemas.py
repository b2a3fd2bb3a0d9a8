import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from app.core.validation import LongText, RequestModel, ResponseModel
from app.feedback.schemas import FeedbackRead

T = TypeVar("T")


class Measures(BaseModel, Generic[T]):
    """One value per measure of the report. Titles are the labels shown on pages and exports."""

    warm_transfers_connected: T = Field(title="Warm transfers connected")
    callbacks_wait_threshold_exceeded: T = Field(
        title="Call back requests: wait over the threshold"
    )
    callbacks_high_call_volume: T = Field(title="Call back requests: high call volume")
    callback_requests: T = Field(title="Call back requests (all reasons)")
    signposts: T = Field(title="Signposts")
    total_contacts: T = Field(
        title="Total contacts", description="Warm transfers + call back requests + signposts."
    )


# (field name, label) in the order every format shows them.
MEASURES: list[tuple[str, str]] = [
    (name, field.title or name) for name, field in Measures.model_fields.items()
]


class Change(ResponseModel):
    absolute: int
    percent: float | None = Field(
        description="Change against the previous month, rounded to 0.1; null when the "
        "previous month was 0."
    )


Figures = Measures[int]
Changes = Measures[Change]


class FigureSet(ResponseModel):
    this_month: Figures
    previous_month: Figures
    change: Changes


class CallbackMeasures(ResponseModel):
    """A month's call back figures of one direction: how the requests it sent were dealt
    with by the body they were sent to. Counts are of events in the month (made, first
    attempted, closed); "at the month's end" is the month's last instant (or now, for the
    month under way). Times are working hours of the receiving body; null when nothing was
    there to measure."""

    requests_made: int = Field(title="Call back requests made")
    closed_reached: int = Field(title="Closed: caller reached")
    closed_unreachable: int = Field(title="Closed: caller could not be reached")
    closed_withdrawn: int = Field(title="Closed: withdrawn by the sending body")
    closed_returned: int = Field(title="Closed: returned by the receiving body")
    open_at_month_end: int = Field(title="Still open at the end of the month")
    overdue_at_month_end: int = Field(title="Open and overdue at the end of the month")
    first_attempts: int = Field(title="First attempts to call back")
    first_attempt_hours_median: float | None = Field(
        title="Working hours to the first attempt: median"
    )
    first_attempt_hours_p90: float | None = Field(
        title="Working hours to the first attempt: 90th percentile"
    )
    close_hours_median: float | None = Field(title="Working hours to closing: median")
    close_hours_p90: float | None = Field(title="Working hours to closing: 90th percentile")
    first_attempts_within_target: int = Field(title="First attempts within their target")
    first_attempts_within_target_percent: float | None = Field(
        title="First attempts within their target (%)",
        description="Share of the month's first attempts made by their due time, in percent "
        "rounded to 0.1; null when there were none.",
    )


# (field name, label) in the order every format shows them.
CALLBACK_MEASURES: list[tuple[str, str]] = [
    (name, field.title or name) for name, field in CallbackMeasures.model_fields.items()
]


class CallbackFigureSet(ResponseModel):
    this_month: CallbackMeasures
    previous_month: CallbackMeasures


class DirectionFigures(FigureSet):
    from_org: str
    to_org: str
    label: str = Field(examples=["CQC to LGSCO"])
    callbacks: CallbackFigureSet | None = Field(
        default=None,
        description="What became of the direction's call back requests; null in a version "
        "published before these figures were counted.",
    )


class ReportStatus(StrEnum):
    open = "open"  # the month has not ended
    due = "due"  # ended, not published, the due date has not passed
    overdue = "overdue"  # ended, not published, past the due date
    published = "published"


class Period(ResponseModel):
    starts_at: datetime = Field(description="Start of the month in Europe/London, as UTC.")
    ends_at: datetime = Field(description="End (exclusive) of the month in Europe/London, as UTC.")
    time_zone: Literal["Europe/London"] = "Europe/London"


class FeedbackGroup(ResponseModel):
    from_org: str
    about_org: str
    label: str
    count: int
    items: list[FeedbackRead]


class FeedbackMeasures(ResponseModel):
    """A month's answers to the misdirection feedback about one body (s.6.2), which that
    body gives. Counts are of events in the month, as for call backs: feedback received in
    the month, and feedback answered in the month whenever it was received. "At the month's
    end" is the month's last instant (or now, for the month under way). Working days are
    England and Wales's, from the UK date it was received to the UK date it was answered
    (answered the same day: 0), over the feedback answered in the month; null when none was."""

    received: int = Field(title="Feedback received in the month")
    responded: int = Field(title="Feedback answered in the month")
    open_at_month_end: int = Field(title="Not answered at the end of the month")
    response_working_days_median: float | None = Field(title="Working days to answer: median")


# (field name, label) in the order every format shows them.
FEEDBACK_MEASURES: list[tuple[str, str]] = [
    (name, field.title or name) for name, field in FeedbackMeasures.model_fields.items()
]


class BodyFeedbackFigures(ResponseModel):
    about_org: str = Field(description="The body the feedback is about, which answers it.")
    label: str = Field(examples=["LGSCO"])
    this_month: FeedbackMeasures
    previous_month: FeedbackMeasures


class PublishedBy(ResponseModel):
    key_id: uuid.UUID
    org: str
    name: str


class Publication(ResponseModel):
    id: uuid.UUID = Field(description="The publication's id, as the audit trail names it.")
    version: int
    published_at: datetime
    published_by: PublishedBy
    due_date: date
    on_time: bool = Field(description="Published on or before the due date (UK date).")
    fluctuation_note: str


class ContactVolumeReport(ResponseModel):
    """The single monthly report both bodies share (ISA Appendix 2, s.6)."""

    month: str = Field(examples=["2026-10"])
    previous_month: str
    period: Period
    due_date: date
    status: ReportStatus
    published_on_time: bool | None = Field(
        description="Whether the first version was published by the due date; null until then."
    )
    figures_source: Literal["live", "published"] = Field(
        description="'published': the frozen figures of `publication`; 'live': counted now."
    )
    publication: Publication | None = Field(
        description="The version whose figures these are (the latest unless one was asked for)."
    )
    live_figures_differ: bool | None = Field(
        description="For published figures: whether counting now gives different figures "
        "(events recorded late); publish again to include them."
    )
    directions: list[DirectionFigures]
    totals: FigureSet
    feedback: list[FeedbackGroup] = Field(
        description="Misdirection feedback submitted in the month, per sending body (s.6.2)."
    )
    feedback_figures: list[BodyFeedbackFigures] | None = Field(
        default=None,
        description="Per body the feedback is about: received, answered, not answered at the "
        "month's end, median working days to answer; null in a version published before "
        "these figures were counted.",
    )
    versions: list[Publication] = Field(description="Every published version, oldest first.")
    generated_at: datetime


class PublishRequest(RequestModel):
    fluctuation_note: LongText = Field(
        description="The reasons for fluctuations in the numbers, as discussed by both sides."
    )


class DueDate(ResponseModel):
    month: str = Field(examples=["2026-10"])
    due_date: date


class DueDates(ResponseModel):
    year: int
    rule: str
    items: list[DueDate]
