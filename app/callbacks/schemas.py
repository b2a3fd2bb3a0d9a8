import uuid
from datetime import datetime

from pydantic import Field

from app.callbacks.lifecycle import CallbackOutcome, CallbackState, CallbackView, ReturnReason
from app.callbacks.lifecycle_schemas import AttemptRead
from app.callbacks.values import Caller, FailureReason
from app.core.validation import ResponseModel
from app.outbox.models import DeliveryStatus

__all__ = ["Caller", "FailureReason"]  # the call back's own values, which transfers imports


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
    state: CallbackState
    outcome: CallbackOutcome | None = Field(description="Null while the request is open.")
    return_reason: ReturnReason | None = Field(description="Set when the outcome is returned.")
    attempts: list[AttemptRead] = Field(description="Tries to call the caller back, oldest first.")
    acknowledged_at: datetime | None
    closed_at: datetime | None
    first_attempt_due_at: datetime = Field(
        description="The route's first-attempt target, in the receiving body's working hours."
    )
    close_due_at: datetime = Field(
        description="The route's target for closing, in the receiving body's working hours."
    )
    overdue: bool = Field(
        description="Open, and past its first-attempt target without an attempt, or past its "
        "target for closing."
    )
    version: int = Field(description="Goes up with every change; the ETag is its quoted value.")

    @classmethod
    def build(cls, view: CallbackView) -> "CallbackRead":
        callback, caller, message = view.callback, view.caller, view.message
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
            state=CallbackState(callback.state),
            outcome=CallbackOutcome(callback.outcome) if callback.outcome else None,
            return_reason=ReturnReason(callback.return_reason) if callback.return_reason else None,
            attempts=[AttemptRead.build(a) for a in view.attempts],
            acknowledged_at=callback.acknowledged_at,
            closed_at=callback.closed_at,
            first_attempt_due_at=callback.first_attempt_due_at,
            close_due_at=callback.close_due_at,
            overdue=view.overdue,
            version=callback.version,
        )


class CallbackPage(ResponseModel):
    items: list[CallbackRead]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
