"""Call back requests: stored with the caller's details and an outbox row, in one transaction."""

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core import metrics
from app.core.auth import Principal
from app.core.errors import NotFound
from app.outbox import service as outbox
from app.outbox.models import OutboxMessage
from app.protocol.routes import CallbackDue, Route

if TYPE_CHECKING:
    from app.transfers.models import Transfer
    from app.transfers.schemas import Caller


def create_callback_request(
    session: AsyncSession,
    *,
    transfer: "Transfer",
    route: Route,
    principal: Principal,
    caller: "Caller",
    now: datetime,
    message_id_domain: str,
    due: CallbackDue,
) -> CallbackRequest:
    records = new_callback_request(
        transfer=transfer,
        route=route,
        principal=principal,
        caller=caller,
        now=now,
        message_id_domain=message_id_domain,
        due=due,
    )
    session.add_all(records)
    return records[0]


def new_callback_request(
    *,
    transfer: "Transfer",
    route: Route,
    principal: Principal,
    caller: "Caller",
    now: datetime,
    message_id_domain: str,
    due: CallbackDue,
) -> tuple[CallbackRequest, CallerDetails, OutboxMessage, AuditEvent]:
    """The call back request, the caller's details, the email to send and the audit row, not
    yet stored."""
    assert transfer.sender_reference and transfer.permission_to_share_at and transfer.failed_at
    callback = CallbackRequest(
        id=uuid.uuid4(),
        transfer_id=transfer.id,
        from_org=transfer.from_org,
        to_org=transfer.to_org,
        reason=transfer.failure_reason,
        sender_reference=transfer.sender_reference,
        permission_to_share_at=transfer.permission_to_share_at,
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
    details = CallerDetails(
        callback_request_id=callback.id,
        name=caller.name,
        contact_number=caller.contact_number,
        provider=caller.provider,
    )
    message = outbox.new_message(
        kind="callback_request",
        to_address=route.callback_mailbox,
        now=now,
        domain=message_id_domain,
        callback_request_id=callback.id,
    )
    event = audit.created_event(principal, audit.RecordType.callback_request, callback.id, now)
    # Counted when built: both the ORM path and the one-statement path come through here.
    metrics.callback_request_created(callback.from_org, callback.to_org)
    return callback, details, message, event


def _with_details() -> Select:  # type: ignore[type-arg]
    return (
        select(CallbackRequest, CallerDetails, OutboxMessage)
        .outerjoin(CallerDetails, CallerDetails.callback_request_id == CallbackRequest.id)
        .outerjoin(OutboxMessage, OutboxMessage.callback_request_id == CallbackRequest.id)
    )


CallbackRow = tuple[CallbackRequest, CallerDetails | None, OutboxMessage | None]


def _unpack(row: Any) -> CallbackRow:
    return row[0], row[1], row[2]


async def get_callback(
    session: AsyncSession, principal: Principal, callback_id: uuid.UUID
) -> CallbackRow:
    row = (
        await session.execute(
            _with_details().where(
                CallbackRequest.id == callback_id, CallbackRequest.from_org == principal.org
            )
        )
    ).first()
    if row is None:
        raise NotFound("not_found", "No such call back request.")
    return _unpack(row)
