"""The periodic job transfers give the outbox worker: close the transfers nobody finished.

A transfer still `waiting` `HANDOFF_NO_OUTCOME_AFTER_SECONDS` after its wait threshold is
closed as `no_outcome_recorded`, so that the monthly report counts every contact. The adviser
may still record the true outcome over it on the same UK day (`service._check_open`).
"""

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import service as audit
from app.core.periodic import PeriodicJob
from app.core.settings import Settings
from app.transfers.models import Transfer
from app.transfers.schemas import TransferStatus

# How often the worker looks; a minute late is of no matter for a two-hour limit.
INTERVAL_SECONDS = 60.0
# Transfers closed per transaction, so one round never holds many rows locked.
BATCH = 500


async def close_forgotten_transfers(
    sessionmaker: async_sessionmaker[AsyncSession], after_seconds: int, now: datetime
) -> int:
    """Close every transfer waiting more than `after_seconds` past its threshold; how many."""
    closed = 0
    after = timedelta(seconds=after_seconds)
    while True:
        async with sessionmaker() as session:
            candidates = (
                await session.execute(
                    select(
                        Transfer.id,
                        Transfer.from_org,
                        Transfer.wait_started_at,
                        Transfer.wait_threshold_seconds,
                    )
                    .where(
                        Transfer.status == TransferStatus.waiting.value,
                        # Every due transfer, and a few not yet due (checked below with its
                        # own threshold): the threshold is not a column of the index.
                        Transfer.wait_started_at < now - after,
                    )
                    .order_by(Transfer.wait_started_at)
                    .limit(BATCH)
                )
            ).all()
            due = [
                row
                for row in candidates
                if row.wait_started_at + timedelta(seconds=row.wait_threshold_seconds) + after < now
            ]
            for row in due:
                # Only if still waiting: an adviser's outcome recorded meanwhile wins.
                result = await session.execute(
                    update(Transfer)
                    .where(Transfer.id == row.id, Transfer.status == TransferStatus.waiting.value)
                    .values(status=TransferStatus.no_outcome_recorded.value, outcome_at=now)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    audit.record(
                        session,
                        audit.SYSTEM,
                        audit.AuditAction.no_outcome,
                        audit.RecordType.transfer,
                        row.id,
                        org=row.from_org,
                        now=now,
                    )
                    closed += 1
            await session.commit()
        if len(candidates) < BATCH or not due:
            return closed


def no_outcome_job(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> PeriodicJob:
    """The close of forgotten transfers, at most once a minute; it returns how many."""

    async def close(now: datetime) -> int:
        return await close_forgotten_transfers(sessionmaker, settings.no_outcome_after_seconds, now)

    return PeriodicJob("no_outcome", INTERVAL_SECONDS, close)
