"""Purging callers' details once they are no longer needed, with the .eml copies of their
emails, and the expired idempotency keys (whose stored answers can hold them too).

A call back request keeps its dates, route, reason, reference, life (state, outcome,
attempts, working times) and delivery status for the report and the audit trail; only
`caller_details` (name, number, provider) goes, and `personal_data_purged_at` says when.

Due means: the request was closed (reached, unreachable, withdrawn or returned) more than
`callback_retention_days` ago. An open request keeps the details however old it is: the
receiving body needs them to call back. One open longer than `open_callback_max_days` is
listed for team leaders as stale (`GET /v1/callbacks?stale=true`, app.callbacks.lifecycle's
`stale_clause`, and a line on the report page) rather than purged silently. A closed request
whose email is still pending or retrying keeps them too: the email cannot go without them.
"""

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.callbacks.emails import KIND as CALLBACK_REQUEST_EMAIL
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.settings import Settings
from app.idempotency.service import purge_expired_idempotency_keys
from app.outbox.backends import FileBackend
from app.outbox.models import DeliveryStatus, OutboxMessage

logger = logging.getLogger("handoff.retention")

BATCH_SIZE = 500
# An email still to be sent needs the caller's details.
WAITING = (DeliveryStatus.pending.value, DeliveryStatus.retrying.value)


@dataclass(frozen=True)
class Retention:
    closed_days: int

    @classmethod
    def of(cls, settings: Settings) -> "Retention":
        return cls(settings.callback_retention_days)


def _its_email() -> ColumnElement[bool]:
    """Joins a call back request to its email (the outbox names it by kind and subject)."""
    return and_(
        OutboxMessage.kind == CALLBACK_REQUEST_EMAIL, OutboxMessage.subject_id == CallbackRequest.id
    )


def _due(now: datetime, retention: Retention) -> Select[uuid.UUID]:
    """Ids of call back requests whose caller's details may go now (closed long enough
    ago, their email not waiting), a range over the index of `closed_at`."""
    closed_before = now - timedelta(days=retention.closed_days)
    return (
        select(CallbackRequest.id)
        .outerjoin(OutboxMessage, _its_email())
        .where(
            CallbackRequest.personal_data_purged_at.is_(None),
            CallbackRequest.closed_at <= closed_before,
            or_(OutboxMessage.id.is_(None), OutboxMessage.status.not_in(WAITING)),
        )
    )


async def count_due(session: AsyncSession, now: datetime, retention: Retention) -> int:
    """How many requests a purge would purge now (for `handoff purge --dry-run`)."""
    return (
        await session.scalar(select(func.count()).select_from(_due(now, retention).subquery())) or 0
    )


async def purge_batch(
    session: AsyncSession,
    *,
    now: datetime,
    retention: Retention,
    actor: audit.Actor,
    limit: int = BATCH_SIZE,
) -> tuple[int, list[uuid.UUID]]:
    """Purge up to `limit` due requests in the session's transaction (the caller commits);
    returns how many, and the ids of the outbox messages whose stored copies should go too.

    The UPDATE re-checks `personal_data_purged_at IS NULL`, so two purges running at once
    (two workers, or the CLI beside a worker) each purge and audit a request only once.
    """
    purged = (
        await session.execute(
            update(CallbackRequest)
            .where(
                CallbackRequest.id.in_(
                    _due(now, retention)
                    .order_by(CallbackRequest.closed_at)
                    .limit(limit)
                    .scalar_subquery()
                ),
                CallbackRequest.personal_data_purged_at.is_(None),
            )
            .values(personal_data_purged_at=now)
            .returning(CallbackRequest.id, CallbackRequest.from_org)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if not purged:
        return 0, []
    ids = [row.id for row in purged]
    await session.execute(
        delete(CallerDetails)
        .where(CallerDetails.callback_request_id.in_(ids))
        .execution_options(synchronize_session=False)
    )
    events = [
        audit.new_event(
            actor,
            audit.AuditAction.purge,
            audit.RecordType.callback_request,
            row.id,
            org=row.from_org,
            now=now,
        )
        for row in purged
    ]
    await session.execute(
        insert(AuditEvent),
        [{c.key: getattr(e, c.key) for c in AuditEvent.__table__.columns} for e in events],
    )
    outbox_ids = await session.scalars(
        select(OutboxMessage.id).where(
            OutboxMessage.kind == CALLBACK_REQUEST_EMAIL, OutboxMessage.subject_id.in_(ids)
        )
    )
    return len(purged), list(outbox_ids)


async def purge_personal_data(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    now: datetime,
    actor: audit.Actor,
) -> int:
    """Purge everything due, a batch per transaction, and the expired idempotency keys with
    their stored answers; returns how many call back requests were purged.

    When nothing is due this is one indexed query. With the file email backend, the .eml
    copies of the purged messages are deleted as well (they hold the caller's details).
    """
    retention = Retention.of(settings)
    files = FileBackend(settings.email_dir) if settings.email_backend == "file" else None
    total = 0
    while True:
        async with sessionmaker() as session:
            purged, outbox_ids = await purge_batch(
                session, now=now, retention=retention, actor=actor
            )
            await session.commit()
        total += purged
        if files is not None and outbox_ids:
            await asyncio.to_thread(files.remove, outbox_ids)
        if purged < BATCH_SIZE:
            break
    # Stored answers to retried requests are sealed, but hold a caller's details all the same.
    async with sessionmaker() as session:
        expired_keys = await purge_expired_idempotency_keys(session, now)
        await session.commit()
    if total:
        logger.info("purged the caller's details of %d call back requests", total)
    if expired_keys:
        logger.info("deleted %d expired idempotency keys", expired_keys)
    return total
