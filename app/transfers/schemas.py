import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

# The caller's details and the failure reason are the call back request's; a failed
# transfer sends them on.
from app.callbacks.schemas import Caller, FailureReason
from app.core.validation import AwareDatetime, Reference, RequestModel, ResponseModel


class TransferStatus(StrEnum):
    waiting = "waiting"
    connected = "connected"
    failed = "failed"  # into a call back request
    declined = "declined"  # the caller did not want to be transferred (s.3.1, s.5.1)
    caller_hung_up = "caller_hung_up"  # the caller ended the call while waiting
    # Still waiting long after the threshold: closed by the worker so that no contact is lost;
    # the adviser may record the true outcome over it the same UK day.
    no_outcome_recorded = "no_outcome_recorded"


# The endings an adviser may record over `no_outcome_recorded`.
OPEN_STATUSES = frozenset({TransferStatus.waiting, TransferStatus.no_outcome_recorded})


class TransferOutcome(StrEnum):
    """How a transfer ended, as the report counts it (a filter of the transfers' list)."""

    connected_within_threshold = "connected_within_threshold"
    connected_after_threshold = "connected_after_threshold"
    callback_wait_threshold_exceeded = "callback_wait_threshold_exceeded"
    callback_high_call_volume = "callback_high_call_volume"
    declined = "declined"
    caller_hung_up = "caller_hung_up"
    no_outcome_recorded = "no_outcome_recorded"


class TransferConnect(RequestModel):
    connected_at: AwareDatetime | None = Field(
        default=None,
        description="When the receiving body answered. Defaults to now. After the wait "
        "threshold it is still accepted, marked `answered_after_threshold`.",
    )


class TransferDeclined(RequestModel):
    declined_at: AwareDatetime | None = Field(
        default=None,
        description="When the caller said they did not want to be transferred. Defaults to now.",
    )


class TransferHungUp(RequestModel):
    hung_up_at: AwareDatetime | None = Field(
        default=None, description="When the caller ended the call while waiting. Defaults to now."
    )


class TransferFail(RequestModel):
    reason: FailureReason
    failed_at: AwareDatetime | None = Field(default=None, description="Defaults to now.")
    caller: Caller
    sender_reference: Reference | None = Field(
        default=None, description="Defaults to the transfer's; a call back always needs one."
    )
    permission_to_share_at: AwareDatetime | None = Field(
        default=None, description="Defaults to the transfer's; a call back always needs one."
    )


class ConnectedOutcome(TransferConnect):
    status: Literal["connected"]


class FailedOutcome(TransferFail):
    status: Literal["failed"]


class DeclinedOutcome(TransferDeclined):
    status: Literal["declined"]


class HungUpOutcome(TransferHungUp):
    status: Literal["caller_hung_up"]


Outcome = Annotated[
    ConnectedOutcome | FailedOutcome | DeclinedOutcome | HungUpOutcome,
    Field(discriminator="status"),
]

ContactReason = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="One of the receiving body's contact reasons (`GET /v1/routes`); "
        "422 `unknown_contact_reason` otherwise.",
        examples=["poor_quality_care"],
    ),
]


class TransferCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "to_org": "lgsco",
                    "sender_reference": "CQC-1001",
                    "permission_to_share_at": "2026-11-10T09:58:00Z",
                },
                {
                    "to_org": "lgsco",
                    "sender_reference": "CQC-1002",
                    "permission_to_share_at": "2026-11-10T09:58:00Z",
                    "outcome": {
                        "status": "failed",
                        "reason": "high_call_volume",
                        "caller": {
                            "name": "Ada Lovelace",
                            "contact_number": "07911 123456",
                            "provider": "Sunrise Care Home",
                        },
                    },
                },
            ]
        }
    )

    to_org: str = Field(min_length=1, max_length=32, examples=["lgsco"])
    sender_reference: Reference | None = None
    topic: str | None = Field(
        default=None, max_length=32, description="Required where the route has IVR options."
    )
    wait_started_at: AwareDatetime | None = Field(default=None, description="Defaults to now.")
    permission_to_share_at: AwareDatetime | None = None
    contact_reason: ContactReason | None = None
    outcome: Outcome | None = Field(
        default=None, description="Record a finished call in one request."
    )


class Dial(ResponseModel):
    number: str
    ivr_option: int | None
    ivr_label: str | None


class TransferRead(ResponseModel):
    id: uuid.UUID
    from_org: str
    to_org: str
    status: TransferStatus
    topic: str | None
    dial: Dial
    sender_reference: str | None
    wait_started_at: datetime
    wait_threshold_seconds: int
    callback_required_after: datetime
    must_request_callback: bool = Field(
        description="True while waiting past the deadline: stop and request a call back."
    )
    next_step: str
    permission_to_share_at: datetime | None
    connected_at: datetime | None
    failed_at: datetime | None
    failure_reason: FailureReason | None
    answered_after_threshold: bool = Field(
        description="Connected after the wait threshold: a warm transfer, counted on its own."
    )
    outcome_at: datetime | None = Field(description="When it ended, as the report counts it.")
    contact_reason: str | None
    contact_reason_label: str | None
    callback_request_id: uuid.UUID | None
    created_at: datetime


class TransferPage(ResponseModel):
    items: list[TransferRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
