"""The periodic jobs housekeeping gives the outbox worker (it knows them only as jobs)."""

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import SYSTEM
from app.core.periodic import PeriodicJob
from app.core.settings import Settings
from app.housekeeping.retention import purge_personal_data


def purge_job(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> PeriodicJob:
    """The purge of everything due, at most once per HANDOFF_PURGE_INTERVAL_SECONDS; it
    returns how many call back requests it purged."""

    async def purge(now: datetime) -> int:
        return await purge_personal_data(sessionmaker, settings, now=now, actor=SYSTEM)

    return PeriodicJob("purge", settings.purge_interval_seconds, purge)


def housekeeping_jobs(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> list[PeriodicJob]:
    return [purge_job(sessionmaker, settings)]
