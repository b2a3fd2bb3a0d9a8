"""The report's feedback figures: per body, how it answered the misdirection feedback about it.

Counted in SQL, a few statements per report whatever the table's size: feedback received by
`submitted_at`, answered by `responded_at` (each a range over its indexed column, bucketed per
month), and what was not answered at each month's end. "Answered in the month" counts the
answers given in the month, whenever the feedback came in, as the call back figures count
closings. The median of the working days to answer, stored on each feedback when it is
answered (app/feedback/lifecycle.py), is `percentile_cont` on PostgreSQL and
`percentiles_by_window` on SQLite (app/reports/callbacks.py), so both give the same number.

No figure reads the feedback's text.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, literal, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.months import Month
from app.feedback.models import Feedback
from app.protocol.routes import RouteTable
from app.reports.callbacks import _in_range, boundaries_of, bucket, percentiles_by_window
from app.reports.schemas import BodyFeedbackFigures, FeedbackMeasures

_F = Feedback

EMPTY = FeedbackMeasures(
    received=0, responded=0, open_at_month_end=0, response_working_days_median=None
)


def _counted(moment: Any, boundaries: Sequence[datetime]) -> Select:  # type: ignore[type-arg]
    """Feedback per body it is about and month of `moment`."""
    return (
        select(
            _F.about_org,
            bucket(moment, boundaries).label("bucket"),
            func.count().label("n"),
        )
        .where(_in_range(moment, boundaries))
        .group_by(_F.about_org, "bucket")
    )


def open_at_statement(moments: Sequence[datetime]) -> Any:
    """Per body and moment: feedback received before it and not answered by then."""
    return union_all(
        *[
            select(_F.about_org, literal(index).label("bucket"), func.count().label("n"))
            .where(
                _F.submitted_at < at,
                or_(_F.responded_at.is_(None), _F.responded_at >= at),
            )
            .group_by(_F.about_org)
            for index, at in enumerate(moments)
        ]
    )


def median_statement(dialect: str, boundaries: Sequence[datetime]) -> Select[Any]:
    """Median working days to answer per body and month of the answer."""
    value, moment = _F.response_working_days, _F.responded_at
    if dialect == "postgresql":
        return (
            select(
                _F.about_org,
                bucket(moment, boundaries).label("bucket"),
                func.percentile_cont(0.5).within_group(value).label("median"),
            )
            .where(_in_range(moment, boundaries), value.is_not(None))
            .group_by(_F.about_org, "bucket")
        )
    return percentiles_by_window(
        value, moment, boundaries, groups=[_F.about_org.label("about_org")]
    )


async def count_feedback(
    session: AsyncSession, months: Sequence[Month], now: datetime
) -> dict[tuple[Month, str], FeedbackMeasures]:
    """Feedback figures per consecutive month and body it is about; bodies with nothing in
    a month are left out (read them as EMPTY)."""
    boundaries = boundaries_of(months)
    found: dict[tuple[Month, str], dict[str, Any]] = {}

    def put(row: Any, values: dict[str, Any]) -> None:
        found.setdefault((months[row.bucket], row.about_org), {}).update(values)

    for name, moment in (("received", _F.submitted_at), ("responded", _F.responded_at)):
        for row in await session.execute(_counted(moment, boundaries)):
            put(row, {name: row.n})
    ends = [min(m.utc_range()[1], now) for m in months]
    for row in await session.execute(open_at_statement(ends)):
        put(row, {"open_at_month_end": row.n})
    dialect = session.get_bind().dialect.name
    for row in await session.execute(median_statement(dialect, boundaries)):
        median = None if row.median is None else round(float(row.median), 1)
        put(row, {"response_working_days_median": median})
    return {
        key: FeedbackMeasures.model_validate({**EMPTY.model_dump(), **values})
        for key, values in found.items()
    }


def bodies(routes: RouteTable, seen: Sequence[str] = ()) -> list[str]:
    """Every body a route of the table sends to, in the table's order, then any other body
    that had feedback (one since removed from the table still shows its history)."""
    table = list(dict.fromkeys(route.to_org for route in routes))
    return table + sorted(set(seen) - set(table))


async def feedback_figures(
    session: AsyncSession, routes: RouteTable, month: Month, now: datetime
) -> list[BodyFeedbackFigures]:
    """The month's and the previous month's feedback figures of every body."""
    previous = month.previous()
    counts = await count_feedback(session, [previous, month], now)

    def label(org: str) -> str:
        body = routes.body(org)
        return body.short_name if body else org

    return [
        BodyFeedbackFigures(
            about_org=org,
            label=label(org),
            this_month=counts.get((month, org), EMPTY),
            previous_month=counts.get((previous, org), EMPTY),
        )
        for org in bodies(routes, [org for _, org in counts])
    ]


# --- published versions ------------------------------------------------------------------


def feedback_figures_frozen(figures: list[BodyFeedbackFigures] | None) -> dict[str, Any]:
    """The part of a published version's frozen figures these are (none if not counted)."""
    if figures is None:
        return {}
    return {"feedback_figures": [f.model_dump(mode="json") for f in figures]}


def thaw_feedback_figures(frozen: dict[str, Any]) -> list[BodyFeedbackFigures] | None:
    """A published version's feedback figures as today's models read them: None in a version
    published before they were counted; a figure added since reads as nothing counted."""
    if "feedback_figures" not in frozen:
        return None
    empty = EMPTY.model_dump(mode="json")
    return [
        BodyFeedbackFigures.model_validate(
            {
                **body,
                "this_month": {**empty, **body["this_month"]},
                "previous_month": {**empty, **body["previous_month"]},
            }
        )
        for body in frozen["feedback_figures"]
    ]
