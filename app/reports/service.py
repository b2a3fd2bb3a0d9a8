"""The monthly contact-volume report: counts in SQL, statuses, due dates and publications.

Counts come from one statement of two `GROUP BY`s (transfers by `outcome_at`, signposts by
`signposted_at`), each a range over its indexed column; rows are never loaded to be counted.
Neither table holds caller personal data, so a purge of caller details changes no figure.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.callbacks.schemas import FailureReason
from app.core import metrics
from app.core.auth import Principal
from app.core.errors import Conflict, NotFound
from app.core.months import LONDON, Month
from app.feedback.models import Feedback
from app.feedback.schemas import FeedbackRead
from app.keys.models import ApiKey
from app.protocol.routes import RouteTable
from app.reports.callbacks import EMPTY as NO_CALLBACKS
from app.reports.callbacks import callback_figures, first_attempt_trend
from app.reports.feedback_figures import (
    feedback_figures,
    feedback_figures_frozen,
    thaw_feedback_figures,
)
from app.reports.models import ReportPublication
from app.reports.schemas import (
    MEASURES,
    BodyFeedbackFigures,
    CallbackFigureSet,
    Change,
    Changes,
    ContactVolumeReport,
    DirectionFigures,
    FeedbackGroup,
    Figures,
    FigureSet,
    Period,
    Publication,
    PublishedBy,
    ReportStatus,
)
from app.reports.workdays import due_date
from app.signposts.models import Signpost
from app.transfers.models import Transfer
from app.transfers.schemas import TransferStatus

Direction = tuple[str, str]


# --- counting ---------------------------------------------------------------------------


def _bucket(column: Any, boundaries: Sequence[datetime]) -> ColumnElement[int]:
    """Index of the [boundaries[i], boundaries[i+1]) range that `column` falls in."""
    whens = [(column < end, i) for i, end in enumerate(boundaries[1:-1])]
    return case(*whens, else_=len(boundaries) - 2) if whens else literal(0)


def _grouped(
    kind: str,
    moment: Any,
    from_org: Any,
    to_org: Any,
    boundaries: Sequence[datetime],
    status: Any = None,
    reason: Any = None,
) -> Select[Any]:
    """Counts of one table per direction (and status and reason, where it has them) and
    range, over [first boundary, last boundary) of the indexed `moment` column."""
    outcome = [column for column in (status, reason) if column is not None]
    query = select(
        literal(kind).label("kind"),
        from_org.label("from_org"),
        to_org.label("to_org"),
        (null() if status is None else status).label("status"),
        (null() if reason is None else reason).label("reason"),
        _bucket(moment, boundaries).label("bucket"),
        func.count().label("n"),
    ).where(moment >= boundaries[0], moment < boundaries[-1])
    # Grouping by the label's name (not by the CASE again) keeps PostgreSQL from seeing two
    # differently-parameterised expressions.
    return query.group_by(from_org, to_org, *outcome, "bucket")


def contact_counts_statement(boundaries: Sequence[datetime]) -> Any:
    """Counts per (source, direction, status, reason, bucket) for consecutive UTC ranges:
    one statement, so one round trip, for both tables."""
    transfers = _grouped(
        "transfer",
        Transfer.outcome_at,
        Transfer.from_org,
        Transfer.to_org,
        boundaries,
        status=Transfer.status,
        reason=Transfer.failure_reason,
    )
    signposts = _grouped(
        "signpost", Signpost.signposted_at, Signpost.from_org, Signpost.to_org, boundaries
    )
    return union_all(transfers, signposts)


def _figures(counts: Counter[str]) -> Figures:
    callbacks = sum(counts[f"callback:{r.value}"] for r in FailureReason)
    return Figures(
        warm_transfers_connected=counts["connected"],
        callbacks_wait_threshold_exceeded=counts[
            f"callback:{FailureReason.wait_threshold_exceeded}"
        ],
        callbacks_high_call_volume=counts[f"callback:{FailureReason.high_call_volume}"],
        callback_requests=callbacks,
        signposts=counts["signpost"],
        total_contacts=counts["connected"] + callbacks + counts["signpost"],
    )


async def count_contacts(
    session: AsyncSession, months: Sequence[Month]
) -> dict[tuple[Month, Direction], Figures]:
    """Figures per consecutive month and direction; directions with no events are left out."""
    boundaries = [m.utc_range()[0] for m in months] + [months[-1].utc_range()[1]]
    tallies: dict[tuple[Month, Direction], Counter[str]] = {}
    for row in await session.execute(contact_counts_statement(boundaries)):
        if row.kind == "signpost":
            measure = "signpost"
        elif row.status == TransferStatus.connected:
            measure = "connected"
        elif row.status == TransferStatus.failed:
            measure = f"callback:{row.reason}"
        else:
            continue
        key = (months[row.bucket], (row.from_org, row.to_org))
        tallies.setdefault(key, Counter())[measure] += row.n
    return {key: _figures(counts) for key, counts in tallies.items()}


def directions(routes: RouteTable, seen: Sequence[Direction] = ()) -> list[Direction]:
    """Every route of the table, in its order, then any other direction that has events
    (a route since removed from the table still shows its history)."""
    table = [(r.from_org, r.to_org) for r in routes]
    return table + sorted(set(seen) - set(table))


def direction_label(routes: RouteTable, direction: Direction) -> str:
    def name(org: str) -> str:
        body = routes.body(org)
        return body.short_name if body else org

    return f"{name(direction[0])} to {name(direction[1])}"


ZERO = Figures.model_validate(dict.fromkeys(Figures.model_fields, 0))


def _change(current: Figures, previous: Figures) -> Changes:
    def one(now: int, before: int) -> Change:
        percent = round((now - before) * 100 / before, 1) if before else None
        return Change(absolute=now - before, percent=percent)

    return Changes.model_validate(
        {name: one(getattr(current, name), getattr(previous, name)) for name, _ in MEASURES}
    )


def _sum(figures: Sequence[Figures]) -> Figures:
    return Figures.model_validate(
        {name: sum(getattr(f, name) for f in figures) for name, _ in MEASURES}
    )


@dataclass
class MonthFigures:
    """A month's figures against the previous month: counted now, or thawed from a version."""

    directions: list[DirectionFigures]
    totals: FigureSet
    # None: thawed from a version published before they were counted.
    feedback_figures: list[BodyFeedbackFigures] | None = None

    def frozen(self) -> dict[str, Any]:
        return {
            "directions": [d.model_dump(mode="json") for d in self.directions],
            "totals": self.totals.model_dump(mode="json"),
            **feedback_figures_frozen(self.feedback_figures),
        }

    @classmethod
    def thaw(cls, data: dict[str, Any]) -> "MonthFigures":
        """A published version's figures as today's models read them. A version published
        before a measure was added has no value for it: it reads as nothing counted (0, no
        change), so an old version still loads; a measure since removed is ignored."""
        return cls(
            [DirectionFigures.model_validate(_with_every_measure(d)) for d in data["directions"]],
            FigureSet.model_validate(_with_every_measure(data["totals"])),
            thaw_feedback_figures(data),
        )


_UNMEASURED: dict[str, Any] = {
    "this_month": 0,
    "previous_month": 0,
    "change": {"absolute": 0, "percent": None},
}


def _with_every_measure(figure_set: dict[str, Any]) -> dict[str, Any]:
    """`figure_set` (a frozen FigureSet) with a value for every measure `Measures` has now;
    its call back figures, if it has them, with every figure `CallbackMeasures` has now
    (one added later reads as nothing counted)."""
    thawed = {
        **figure_set,
        **{
            part: {**dict.fromkeys(Figures.model_fields, missing), **figure_set[part]}
            for part, missing in _UNMEASURED.items()
        },
    }
    if figure_set.get("callbacks"):
        empty = NO_CALLBACKS.model_dump(mode="json")
        thawed["callbacks"] = {
            part: {**empty, **values} for part, values in figure_set["callbacks"].items()
        }
    return thawed


async def month_figures(
    session: AsyncSession, routes: RouteTable, month: Month, now: datetime
) -> MonthFigures:
    previous = month.previous()
    counts = await count_contacts(session, [previous, month])
    lives = await callback_figures(session, [previous, month], now)
    rows = []
    for direction in directions(routes, [d for _, d in counts] + [d for _, d in lives]):
        this = counts.get((month, direction), ZERO)
        before = counts.get((previous, direction), ZERO)
        rows.append(
            DirectionFigures(
                from_org=direction[0],
                to_org=direction[1],
                label=direction_label(routes, direction),
                this_month=this,
                previous_month=before,
                change=_change(this, before),
                callbacks=CallbackFigureSet(
                    this_month=lives.get((month, direction), NO_CALLBACKS),
                    previous_month=lives.get((previous, direction), NO_CALLBACKS),
                ),
            )
        )
    this_month = _sum([r.this_month for r in rows])
    previous_month = _sum([r.previous_month for r in rows])
    totals = FigureSet(
        this_month=this_month,
        previous_month=previous_month,
        change=_change(this_month, previous_month),
    )
    return MonthFigures(rows, totals, await feedback_figures(session, routes, month, now))


def _differ(frozen: dict[str, Any], live: MonthFigures) -> bool:
    """Whether counting now gives other figures than the version froze. A version frozen
    before a kind of figure was counted is compared on the figures it has."""
    now = live.frozen()
    for name in set(now) - set(frozen):  # a kind of figure counted since
        now.pop(name)
    for before, after in zip(frozen["directions"], now["directions"], strict=False):
        for name in set(after) - set(before):
            after.pop(name)
    return frozen != now


@dataclass
class TrendSeries:
    """Monthly figures of one direction, oldest month first (for the chart)."""

    direction: Direction
    label: str
    points: list[tuple[Month, Figures]]
    # Working hours to the first attempt per month: (month, median, 90th percentile).
    first_attempt_hours: list[tuple[Month, float | None, float | None]] = field(
        default_factory=list
    )


async def trend(
    session: AsyncSession, routes: RouteTable, last: Month, months: int = 12
) -> list[TrendSeries]:
    """The `months` months ending with `last`, per direction, from one statement."""
    span = [last]
    while len(span) < months:
        span.insert(0, span[0].previous())
    counts = await count_contacts(session, span)
    hours = await first_attempt_trend(session, span)
    return [
        TrendSeries(
            direction,
            direction_label(routes, direction),
            [(m, counts.get((m, direction), ZERO)) for m in span],
            [(m, *hours.get((m, direction), (None, None))) for m in span],
        )
        for direction in directions(routes, [d for _, d in counts] + [d for _, d in hours])
    ]


# --- feedback -----------------------------------------------------------------------------


async def month_feedback(
    session: AsyncSession, routes: RouteTable, month: Month
) -> list[FeedbackGroup]:
    start, end = month.utc_range()
    rows = (
        await session.scalars(
            select(Feedback)
            .where(Feedback.submitted_at >= start, Feedback.submitted_at < end)
            .order_by(Feedback.submitted_at, Feedback.id)
        )
    ).all()
    by_direction: dict[Direction, list[FeedbackRead]] = {}
    for row in rows:
        by_direction.setdefault((row.from_org, row.about_org), []).append(
            FeedbackRead.model_validate(row)
        )
    return [
        FeedbackGroup(
            from_org=direction[0],
            about_org=direction[1],
            label=direction_label(routes, direction),
            count=len(by_direction.get(direction, [])),
            items=by_direction.get(direction, []),
        )
        for direction in directions(routes, list(by_direction))
    ]


# --- status and publications -----------------------------------------------------------------


def has_ended(month: Month, now: datetime) -> bool:
    return now >= month.utc_range()[1]


def status_of(month: Month, now: datetime, published: bool) -> ReportStatus:
    if published:
        return ReportStatus.published
    if not has_ended(month, now):
        return ReportStatus.open
    today = now.astimezone(LONDON).date()
    return ReportStatus.due if today <= due_date(month) else ReportStatus.overdue


def publication_read(row: ReportPublication) -> Publication:
    return Publication(
        id=row.id,
        version=row.version,
        published_at=row.published_at,
        published_by=PublishedBy(
            key_id=row.published_by_key_id, org=row.published_by_org, name=row.published_by_name
        ),
        due_date=row.due_date,
        on_time=row.on_time,
        fluctuation_note=row.fluctuation_note,
    )


async def publications(session: AsyncSession, month: Month) -> list[ReportPublication]:
    return list(
        (
            await session.scalars(
                select(ReportPublication)
                .where(ReportPublication.month == str(month))
                .order_by(ReportPublication.version)
            )
        ).all()
    )


async def first_month_with_records(session: AsyncSession) -> Month | None:
    """The earliest month with a contact, feedback or publication (each an indexed MIN)."""
    earliest = [
        await session.scalar(select(func.min(column)))
        for column in (Transfer.outcome_at, Signpost.signposted_at, Feedback.submitted_at)
    ]
    published = await session.scalar(select(func.min(ReportPublication.month)))
    months = [Month.containing(moment) for moment in earliest if moment is not None]
    if published:
        months.append(Month.parse(published))
    return min(months) if months else None


@dataclass(frozen=True)
class MonthSummary:
    month: Month
    due_date: Any
    status: ReportStatus
    latest_version: int | None
    first_published_at: datetime | None
    published_on_time: bool | None


async def month_summaries(
    session: AsyncSession, months: Sequence[Month], now: datetime
) -> list[MonthSummary]:
    """Due date and status of each month, with one query for their publications."""
    rows = await session.execute(
        select(
            ReportPublication.month,
            ReportPublication.version,
            ReportPublication.published_at,
            ReportPublication.on_time,
        )
        .where(ReportPublication.month.in_([str(m) for m in months]))
        .order_by(ReportPublication.month, ReportPublication.version)
    )
    first: dict[str, Any] = {}
    latest: dict[str, int] = {}
    for row in rows:
        first.setdefault(row.month, row)
        latest[row.month] = row.version
    summaries = []
    for month in months:
        published = first.get(str(month))
        summaries.append(
            MonthSummary(
                month=month,
                due_date=due_date(month),
                status=status_of(month, now, published is not None),
                latest_version=latest.get(str(month)),
                first_published_at=published.published_at if published else None,
                published_on_time=published.on_time if published else None,
            )
        )
    return summaries


async def build_report(
    session: AsyncSession,
    routes: RouteTable,
    month: Month,
    *,
    now: datetime,
    version: int | None = None,
) -> ContactVolumeReport:
    """The month's report: the latest published version's figures if there is one (or the
    version asked for), otherwise the figures counted now."""
    with metrics.time_report("contact_volumes"):
        return await _build_report(session, routes, month, now=now, version=version)


async def _build_report(
    session: AsyncSession,
    routes: RouteTable,
    month: Month,
    *,
    now: datetime,
    version: int | None,
) -> ContactVolumeReport:
    versions = await publications(session, month)
    shown: ReportPublication | None = versions[-1] if versions else None
    if version is not None:
        shown = next((v for v in versions if v.version == version), None)
        if shown is None:
            raise NotFound(
                "report_version_not_found", f"The report of {month} has no version {version}."
            )
    live = await month_figures(session, routes, month, now)
    figures = MonthFigures.thaw(shown.figures) if shown else live
    start, end = month.utc_range()
    return ContactVolumeReport(
        month=str(month),
        previous_month=str(month.previous()),
        period=Period(starts_at=start, ends_at=end),
        due_date=due_date(month),
        status=status_of(month, now, bool(versions)),
        published_on_time=versions[0].on_time if versions else None,
        figures_source="published" if shown else "live",
        publication=publication_read(shown) if shown else None,
        live_figures_differ=_differ(shown.figures, live) if shown else None,
        directions=figures.directions,
        totals=figures.totals,
        feedback=await month_feedback(session, routes, month),
        feedback_figures=figures.feedback_figures,
        versions=[publication_read(v) for v in versions],
        generated_at=now,
    )


async def publish(
    session: AsyncSession,
    principal: Principal,
    routes: RouteTable,
    month: Month,
    *,
    fluctuation_note: str,
    now: datetime,
) -> ReportPublication:
    """Freeze the month's figures as a new version. Refused while the month is still open."""
    if not has_ended(month, now):
        opens = month.next().first_day()
        raise Conflict(
            "month_not_ended",
            f"{month} has not ended yet: its report can be published from "
            f"{opens.day} {opens:%B %Y}.",
        )
    latest = await session.scalar(
        select(func.max(ReportPublication.version)).where(ReportPublication.month == str(month))
    )
    key_name = await session.scalar(select(ApiKey.name).where(ApiKey.id == principal.key_id))
    due = due_date(month)
    publication = ReportPublication(
        month=str(month),
        version=(latest or 0) + 1,
        figures=(await month_figures(session, routes, month, now)).frozen(),
        fluctuation_note=fluctuation_note,
        due_date=due,
        on_time=now.astimezone(LONDON).date() <= due,
        published_at=now,
        published_by_key_id=principal.key_id,
        published_by_org=principal.body,
        published_by_name=key_name or "",
    )
    session.add(publication)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Two publications of one month at the same moment: the unique (month, version) lets
        # only one have the number.
        await session.rollback()
        raise Conflict(
            "publication_conflict",
            f"Another version of {month} was published at the same moment: reload and check it.",
        ) from exc
    audit.record(
        session,
        principal,
        audit.AuditAction.publish,
        audit.RecordType.report_publication,
        publication.id,
        org=principal.body,
        now=now,
    )
    return publication
