"""Call back requests: stored with the caller's details and an outbox row, in one transaction."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.callbacks.emails import KIND as CALLBACK_REQUEST_EMAIL
from app.callbacks.lifecycle import with_details
from app.callbacks.models import CallbackRequest, CallerDetails
from app.callbacks.schemas import Caller, FailureReason
from app.core import metrics
from app.core.access import get_visible_row
from app.core.auth import Principal
from app.outbox import service as outbox
from app.outbox.models import OutboxMessage
from app.protocol.routes import CallbackDue, Route


@dataclass(frozen=True, slots=True)
class Failure:
    """What a call back request is made from: a failed warm transfer, in plain values."""

    transfer_id: uuid.UUID
    from_org: str
    to_org: str
    reason: FailureReason
    sender_reference: str
    permission_to_share_at: datetime
    caller: Caller


def create_callback_request(
    session: AsyncSession,
    failure: Failure,
    *,
    route: Route,
    principal: Principal,
    now: datetime,
    due: CallbackDue,
) -> CallbackRequest:
    records = new_callback_request(failure, route=route, principal=principal, now=now, due=due)
    session.add_all(records)
    return records[0]


def new_callback_request(
    failure: Failure,
    *,
    route: Route,
    principal: Principal,
    now: datetime,
    due: CallbackDue,
) -> tuple[CallbackRequest, CallerDetails, OutboxMessage, AuditEvent]:
    """The call back request, the caller's details, the email to send and the audit row, not
    yet stored."""
    callback = CallbackRequest(
        id=uuid.uuid4(),
        transfer_id=failure.transfer_id,
        from_org=failure.from_org,
        to_org=failure.to_org,
        reason=failure.reason.value,
        sender_reference=failure.sender_reference,
        permission_to_share_at=failure.permission_to_share_at,
        mailbox=route.callback_mailbox,
        requested_at=now,
        created_by_key_id=principal.key_id,
        created_at=now,
        # Set here, not left to column defaults: the one-statement insert writes attributes.
        state="requested",
        version=1,
        first_attempt_due_at=due.first_attempt_due_at,
        close_due_at=due.close_due_at,
    )
    caller = failure.caller
    details = CallerDetails(
        callback_request_id=callback.id,
        name=caller.name,
        contact_number=caller.contact_number,
        provider=caller.provider,
    )
    message = outbox.new_message(
        kind=CALLBACK_REQUEST_EMAIL,
        subject_id=callback.id,
        to_address=route.callback_mailbox,
        now=now,
    )
    event = audit.created_event(principal, audit.RecordType.callback_request, callback.id, now)
    # Counted when built: both the ORM path and the one-statement path come through here.
    metrics.callback_request_created(callback.from_org, callback.to_org)
    return callback, details, message, event


CallbackRow = tuple[CallbackRequest, CallerDetails | None, OutboxMessage | None]


def _unpack(row: Any) -> CallbackRow:
    return row[0], row[1], row[2]


async def get_callback(
    session: AsyncSession, principal: Principal, callback_id: uuid.UUID
) -> CallbackRow:
    row = await get_visible_row(
        session,
        with_details(),
        CallbackRequest,
        callback_id,
        principal.body,
        name="call back request",
    )
    return _unpack(row)
