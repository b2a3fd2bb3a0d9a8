"""The outbox's metrics: delivery attempts counted by the worker, and the queue read from the
table at scrape time (registered into `app.core.metrics` by app.wiring)."""

from datetime import datetime

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.outbox.models import DeliveryStatus, OutboxMessage

OUTBOX_DELIVERIES = Counter(
    "handoff_outbox_deliveries_total",
    "Outbox delivery attempts by result: sent, retry (failed, will be tried again) or dead "
    "(failed for the last time).",
    ["result"],
)

DELIVERY_RESULTS = ("sent", "retry", "dead")
for _result in DELIVERY_RESULTS:
    # Present at zero from the start, so that rate() and alerts see the series.
    OUTBOX_DELIVERIES.labels(result=_result)

# Statuses of an outbox message that is still waiting to be sent.
OUTBOX_WAITING = (DeliveryStatus.pending.value, DeliveryStatus.retrying.value)


def record_delivery(result: str) -> None:
    """Count one delivery attempt; `result` is one of DELIVERY_RESULTS."""
    if result not in DELIVERY_RESULTS:
        raise ValueError(f"unknown delivery result {result!r}")
    OUTBOX_DELIVERIES.labels(result=result).inc()


async def outbox_families(session: AsyncSession, now: datetime) -> list[GaugeMetricFamily]:
    """Pending outbox messages and the age of the oldest, queried from the shared table."""
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(OutboxMessage.created_at)).where(
                OutboxMessage.status.in_(OUTBOX_WAITING)
            )
        )
    ).one()
    age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
    return [
        GaugeMetricFamily(
            "handoff_outbox_pending_messages",
            "Outbox messages waiting to be sent (pending or retrying).",
            value=count,
        ),
        GaugeMetricFamily(
            "handoff_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox message still waiting to be sent; 0 when none is.",
            value=age,
        ),
    ]
