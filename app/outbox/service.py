"""Queueing email in the same transaction as the record it is about."""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.outbox.models import OutboxMessage


def message_id_for(outbox_id: uuid.UUID, domain: str) -> str:
    # Stable across retries, so a receiver can recognise a resend after a crash.
    return f"<{outbox_id}@{domain}>"


def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    to_address: str,
    now: datetime,
    domain: str,
    callback_request_id: uuid.UUID | None = None,
    feedback_id: uuid.UUID | None = None,
) -> OutboxMessage:
    message = new_message(
        kind=kind,
        to_address=to_address,
        now=now,
        domain=domain,
        callback_request_id=callback_request_id,
        feedback_id=feedback_id,
    )
    session.add(message)
    return message


def new_message(
    *,
    kind: str,
    to_address: str,
    now: datetime,
    domain: str,
    callback_request_id: uuid.UUID | None = None,
    feedback_id: uuid.UUID | None = None,
) -> OutboxMessage:
    """A pending message, not yet added to any session (see `enqueue`)."""
    outbox_id = uuid.uuid4()
    return OutboxMessage(
        id=outbox_id,
        kind=kind,
        to_address=to_address,
        message_id=message_id_for(outbox_id, domain),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        callback_request_id=callback_request_id,
        feedback_id=feedback_id,
        created_at=now,
    )
