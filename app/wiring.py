"""Wiring once, where the app or a command is built: the email kinds each package owns, the
outbox's Message-ID domain, the outbox's and call backs' metrics, and the periodic jobs the
worker is handed (housekeeping's purge, transfers' close of forgotten transfers, reports'
reminders).

`create_app` and the `handoff` commands call `wire`, and build the outbox worker with
`outbox_worker`; below this layer no package names another's emails or jobs.
"""

import random
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.callbacks import metrics as callback_metrics
from app.callbacks.emails import CALLBACK_REQUEST_EMAIL
from app.core import metrics
from app.core.clock import Clock
from app.core.settings import Settings
from app.feedback.emails import FEEDBACK_EMAIL
from app.housekeeping.jobs import housekeeping_jobs
from app.outbox import metrics as outbox_metrics
from app.outbox import service as outbox
from app.outbox.kinds import KINDS
from app.outbox.worker import OutboxWorker
from app.protocol.routes import RouteTable
from app.reports.reminders import REPORT_EMAILS, report_notices_job
from app.transfers.jobs import no_outcome_job

EMAIL_KINDS = (CALLBACK_REQUEST_EMAIL, FEEDBACK_EMAIL, *REPORT_EMAILS)


def register() -> None:
    """Register what the outbox sends and measures (idempotent; needs no settings)."""
    for kind in EMAIL_KINDS:
        KINDS.register(kind)
    metrics.register_scrape_collector("outbox", outbox_metrics.outbox_families)
    metrics.register_scrape_collector("callbacks", callback_metrics.callback_families)


def wire(settings: Settings) -> None:
    """`register`, and the outbox's Message-ID domain from `settings`."""
    register()
    outbox.use_settings(settings)


def outbox_worker(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    routes: RouteTable,
    clock: Clock,
    *,
    rng: random.Random | None = None,
    **options: Any,
) -> OutboxWorker:
    """The outbox worker with the periodic jobs handed to it: housekeeping's (the purge),
    transfers' (closing the transfers nobody finished) and reports' (the report's reminders
    and completion notices)."""
    wire(settings)
    return OutboxWorker(
        sessionmaker,
        settings,
        routes,
        clock,
        rng=rng,
        jobs=[
            *housekeeping_jobs(sessionmaker, settings),
            no_outcome_job(sessionmaker, settings),
            report_notices_job(sessionmaker, routes),
        ],
        **options,
    )
