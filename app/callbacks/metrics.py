"""Call back requests' gauges, read from the table at scrape time (registered into
`app.core.metrics` by app.wiring): how many are open, and how many of those are overdue, by
the receiving body. One indexed GROUP BY over the open requests; no personal data."""

from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.callbacks.lifecycle import CallbackState, overdue_clause
from app.callbacks.models import CallbackRequest


async def callback_families(session: AsyncSession, now: datetime) -> list[GaugeMetricFamily]:
    rows = (
        await session.execute(
            select(
                CallbackRequest.to_org,
                func.count(),
                func.coalesce(func.sum(case((overdue_clause(now), 1), else_=0)), 0),
            )
            .where(CallbackRequest.state != CallbackState.closed.value)
            .group_by(CallbackRequest.to_org)
            .order_by(CallbackRequest.to_org)
        )
    ).all()
    open_ = GaugeMetricFamily(
        "handoff_callback_requests_open",
        "Call back requests not yet closed, by the body they are addressed to.",
        labels=["to_org"],
    )
    overdue = GaugeMetricFamily(
        "handoff_callback_requests_overdue",
        "Open call back requests past their first-attempt or close target, by the body they "
        "are addressed to.",
        labels=["to_org"],
    )
    for to_org, count, late in rows:
        open_.add_metric([to_org], count)
        overdue.add_metric([to_org], late)
    return [open_, overdue]
