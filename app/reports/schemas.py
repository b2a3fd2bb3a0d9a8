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
    warm_transfers_connected_after_threshold: T = Field(
        title="Warm transfers connected after the wait limit",
        description="Of the warm transfers connected, those answered after the wait threshold.",
    )
    callbacks_wait_threshold_exceeded: T = Field(
        title="Call back requests: wait over the threshold"
    )
    callbacks_high_call_volume: T = Field(title="Call back requests: high call volume")
    callback_requests: T = Field(title="Call back requests (all reasons)")
    transfers_declined: T = Field(title="Transfers the caller declined")
    callers_hung_up: T = Field(title="Callers who hung up while waiting")
    transfers_no_outcome_recorded: T = Field(
        title="Transfers with no outcome recorded",
        description="Still waiting long after the threshold, closed by the service.",
    )
    signposts: T = Field(title="Signposts")
    total_contacts: T = Field(
        title="Total contacts",
        description="Every ended transfer (connected, call back requests, declined, caller "
        "hung up, no outcome recorded) + signposts: no contact is left out.",
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


class AnswerMeasures(ResponseModel):
    """How quickly one direction's warm transfers were answered in a month (by the moment
    each ended). The share counts every caller who waited for an answer: those answered
    (within the wait limit or after it: after it is "not within"), those whose wait ran
    over the limit into a call back request, and those who hung up while waiting. Declined
    transfers, call backs for high call volume and transfers with no outcome recorded are
    not in it: the caller did not wait, or nobody knows what happened."""

    answered: int = Field(title="Warm transfers answered")
    answered_within_threshold: int = Field(title="Answered within the wait limit")
    waited: int = Field(
        title="Callers who waited",
        description="Answered (within or after the limit) + call back requests for waiting "
        "over the threshold + callers who hung up while waiting.",
    )
    answered_within_threshold_percent: float | None = Field(
        title="Answered within the wait limit (%)",
        description="answered_within_threshold / waited, in percent rounded to 0.1; null "
        "when nobody waited.",
    )
    answer_seconds_median: float | None = Field(
        title="Seconds to answer: median",
        description="From the start of the wait to the answer, rounded to 0.1; null when "
        "none was answered.",
    )
    answer_seconds_p90: float | None = Field(title="Seconds to answer: 90th percentile")


# (field name, label) in the order every format shows them.
ANSWER_MEASURES: list[tuple[str, str]] = [
    (name, field.title or name) for name, field in AnswerMeasures.model_fields.items()
]


class AnswerFigureSet(ResponseModel):
    this_month: AnswerMeasures
    previous_month: AnswerMeasures


class ReasonFigures(ResponseModel):
    """Contacts (ended transfers and signposts) of one direction with one contact reason."""

    contact_reason: str | None = Field(
        description="The receiving body's contact reason (`GET /v1/routes`); null for the "
        "contacts recorded with none.",
        examples=["poor_quality_care"],
    )
    label: str = Field(examples=["Poor quality care", "No reason given"])
    this_month: int
    previous_month: int


class DirectionFigures(FigureSet):
    from_org: str
    to_org: str
    label: str = Field(examples=["CQC to LGSCO"])
    callbacks: CallbackFigureSet | None = Field(
        default=None,
        description="What became of the direction's call back requests; null in a version "
        "published before these figures were counted.",
    )
    answer: AnswerFigureSet | None = Field(
        default=None,
        description="How quickly the direction's warm transfers were answered; null in a "
        "version published before these figures were counted.",
    )
    reasons: list[ReasonFigures] | None = Field(
        default=None,
        description="The direction's contacts by contact reason: each of the receiving body's "
        "reasons in the route table's order, then any no longer in it, then none given; null "
        "in a version published before these figures were counted.",
    )


class ReportStatus(StrEnum):
    open = "open"  # the month has not ended
    due = "due"  # ended, no body has signed, the due date has not passed
    overdue = "overdue"  # ended, no body has signed, past the due date
    awaiting_signature = "awaiting_signature"  # the latest version lacks a body's signature
    complete = "complete"  # every body signed, the first complete version by the due date
    complete_late = "complete_late"  # every body signed, the first time after the due date


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


class SignedBy(ResponseModel):
    key_id: uuid.UUID
    name: str = Field(description="The key's name when it signed.")


class Signature(ResponseModel):
    org: str = Field(description="The body that signed.")
    fluctuation_note: str = Field(description="That body's own reasons for fluctuations.")
    signed_at: datetime
    signed_by: SignedBy


class Publication(ResponseModel):
    """One version of the month's report. It is made by the first body to sign it and is
    complete when every body of the report has signed it."""

    id: uuid.UUID = Field(description="The version's id, as the audit trail names it.")
    version: int
    published_at: datetime = Field(description="When the version was made (its first signature).")
    published_by: PublishedBy = Field(description="Who made the version (signed it first).")
    due_date: date
    on_time: bool | None = Field(
        description="Complete on or before the due date (UK date); null until complete."
    )
    fluctuation_note: str = Field(
        description="The note of the body that made the version; each body's own note is in "
        "`signatures`."
    )
    complete: bool = Field(description="Every body of the report has signed this version.")
    completed_at: datetime | None = Field(description="When the last body signed it.")
    legacy: bool = Field(
        description="Published by one body before both bodies signed the report; complete "
        "as it was."
    )
    signatures: list[Signature] = Field(description="Each body's signature, first first.")
    awaiting: list[str] = Field(description="The bodies yet to sign this version.")


class ContactVolumeReport(ResponseModel):
    """The single monthly report both bodies share (ISA Appendix 2, s.6)."""

    month: str = Field(examples=["2026-10"])
    previous_month: str
    period: Period
    due_date: date
    status: ReportStatus
    awaiting_bodies: list[str] = Field(
        default_factory=list,
        description="For `awaiting_signature`: the bodies yet to sign the latest version.",
    )
    published_on_time: bool | None = Field(
        description="Whether the first complete version was complete by the due date; null "
        "until one is."
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
    versions: list[Publication] = Field(
        description="Every version, oldest first (for a relationship owner: the complete ones)."
    )
    generated_at: datetime


class PublishRequest(RequestModel):
    fluctuation_note: LongText = Field(
        description="The reasons for fluctuations in the numbers, as discussed by both sides."
    )


class SignRequest(PublishRequest):
    fluctuation_note: LongText = Field(
        description="Your body's own reasons for fluctuations in the numbers."
    )


class Signed(ResponseModel):
    """A body's signature, and the version it is on."""

    signature: Signature
    publication: Publication
    completed: bool = Field(description="This signature made the version complete.")


class CompleteVersion(ResponseModel):
    month: str = Field(examples=["2026-10"])
    version: int
    due_date: date
    completed_at: datetime
    on_time: bool
    legacy: bool
    signatures: list[Signature]


class CompleteVersions(ResponseModel):
    items: list[CompleteVersion] = Field(description="Newest month first, newest version first.")


class DueDate(ResponseModel):
    month: str = Field(examples=["2026-10"])
    due_date: date


class DueDates(ResponseModel):
    year: int
    rule: str
    items: list[DueDate]
