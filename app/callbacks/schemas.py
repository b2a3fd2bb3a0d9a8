import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import Field

from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.validation import (
    CallerName,
    PhoneNumber,
    ProviderName,
    RequestModel,
    ResponseModel,
)
from app.outbox.models import DeliveryStatus, OutboxMessage


# Why the warm transfer failed and a call back is requested instead. (A comment, not a
# docstring: a docstring would enter the OpenAPI document.)
class FailureReason(StrEnum):
    wait_threshold_exceeded = "wait_threshold_exceeded"
    high_call_volume = "high_call_volume"


class Caller(RequestModel):
    """The only caller details the protocol lets one body send the other."""

    name: CallerName
    contact_number: PhoneNumber
    provider: ProviderName


class CallerRead(ResponseModel):
    name: str
    contact_number: str = Field(description="E.164")
    provider: str


class Delivery(ResponseModel):
    status: DeliveryStatus
    attempts: int
    last_error_code: str | None
    sent_at: datetime | None


class CallbackRead(ResponseModel):
    id: uuid.UUID
    transfer_id: uuid.UUID
    from_org: str
    to_org: str
    reason: FailureReason
    sender_reference: str
    permission_to_share_at: datetime
    mailbox: str
    requested_at: datetime
    caller: CallerRead | None = Field(description="Null once the personal data is purged.")
    personal_data_purged_at: datetime | None
    delivery: Delivery

    @classmethod
    def build(
        cls,
        callback: CallbackRequest,
        caller: CallerDetails | None,
        message: OutboxMessage | None,
    ) -> "CallbackRead":
        delivery = (
            Delivery.model_validate(message)
            if message is not None
            else Delivery(
                status=DeliveryStatus.pending, attempts=0, last_error_code=None, sent_at=None
            )
        )
        return cls(
            id=callback.id,
            transfer_id=callback.transfer_id,
            from_org=callback.from_org,
            to_org=callback.to_org,
            reason=FailureReason(callback.reason),
            sender_reference=callback.sender_reference,
            permission_to_share_at=callback.permission_to_share_at,
            mailbox=callback.mailbox,
            requested_at=callback.requested_at,
            caller=CallerRead.model_validate(caller) if caller else None,
            personal_data_purged_at=callback.personal_data_purged_at,
            delivery=delivery,
        )


class CallbackPage(ResponseModel):
    items: list[CallbackRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
