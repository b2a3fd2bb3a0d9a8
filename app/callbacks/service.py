"""Call back requests: stored with the caller's details and an outbox row, in one transaction."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.callbacks.emails import KIND as CALLBACK_REQUEST_EMAIL
from app.callbacks.models import CallbackRequest, CallerDetails
from app.callbacks.schemas import Caller, FailureReason
from app.core import metrics
from app.core.access import get_visible_row, visible_to
from app.core.auth import Principal
from app.core.months import Month
from app.core.pagination import newest_first, split_page
from app.outbox import service as outbox
from app.outbox.models import OutboxMessage
from app.protocol.routes import Route


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
) -> CallbackRequest:
    records = new_callback_request(failure, route=route, principal=principal, now=now)
    session.add_all(records)
    return records[0]


def new_callback_request(
    failure: Failure,
    *,
    route: Route,
    principal: Principal,
    now: datetime,
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


def _with_details() -> Select:  # type: ignore[type-arg]
    return (
        select(CallbackRequest, CallerDetails, OutboxMessage)
        .outerjoin(CallerDetails, CallerDetails.callback_request_id == CallbackRequest.id)
        .outerjoin(
            OutboxMessage,
            and_(
                OutboxMessage.kind == CALLBACK_REQUEST_EMAIL,
                OutboxMessage.subject_id == CallbackRequest.id,
            ),
        )
    )


CallbackRow = tuple[CallbackRequest, CallerDetails | None, OutboxMessage | None]


def _unpack(row: Any) -> CallbackRow:
    return row[0], row[1], row[2]


async def get_callback(
    session: AsyncSession, principal: Principal, callback_id: uuid.UUID
) -> CallbackRow:
    row = await get_visible_row(
        session,
        _with_details(),
        CallbackRequest,
        callback_id,
        principal.body,
        name="call back request",
    )
    return _unpack(row)


async def list_callbacks(
    session: AsyncSession,
    principal: Principal,
    *,
    month: Month | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[CallbackRow], str | None]:
    query = _with_details().where(visible_to(CallbackRequest, principal.body))
    if month is not None:
        start, end = month.utc_range()
        query = query.where(
            CallbackRequest.requested_at >= start, CallbackRequest.requested_at < end
        )
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    query = newest_first(query, CallbackRequest.requested_at, CallbackRequest.id, cursor, limit)
    rows = [_unpack(r) for r in (await session.execute(query)).all()]
    return split_page(rows, limit, lambda row: (row[0].requested_at, row[0].id))
