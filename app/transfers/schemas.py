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
    failed = "failed"


class TransferConnect(RequestModel):
    connected_at: AwareDatetime | None = Field(
        default=None, description="When the receiving body answered. Defaults to now."
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


Outcome = Annotated[ConnectedOutcome | FailedOutcome, Field(discriminator="status")]


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
    callback_request_id: uuid.UUID | None
    created_at: datetime
