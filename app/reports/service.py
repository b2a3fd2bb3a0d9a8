"""The monthly contact-volume report: counts in SQL, statuses, due dates and versions (signed
by both bodies: app/reports/signing.py).

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
    Select,
    func,
    literal,
    null,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.callbacks.schemas import FailureReason
from app.core import metrics
from app.core.auth import Principal
from app.core.errors import Conflict, NotFound
from app.core.months import Month
from app.core.side_by_side import Read, side_by_side
from app.feedback.models import Feedback
from app.feedback.schemas import FeedbackRead
from app.protocol.routes import RouteTable
from app.reports import signing
from app.reports.callbacks import EMPTY as NO_CALLBACKS
from app.reports.callbacks import bucket, callback_figures, first_attempt_trend
from app.reports.feedback_figures import (
    feedback_figures,
    feedback_figures_frozen,
    thaw_feedback_figures,
)
from app.reports.models import ReportPublication, ReportSignature
from app.reports.reasons import reason_figures
from app.reports.schemas import (
    MEASURES,
    AnswerFigureSet,
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
from app.reports.schemas import Signed as SignedRead
from app.reports.transfers import EMPTY as NO_ANSWERS
from app.reports.transfers import answer_measures, answer_times
from app.reports.workdays import due_date
from app.signposts.models import Signpost
from app.transfers.models import Transfer
from app.transfers.schemas import TransferStatus

Direction = tuple[str, str]


# --- counting ---------------------------------------------------------------------------


def _grouped(
    kind: str,
    moment: Any,
    from_org: Any,
    to_org: Any,
    boundaries: Sequence[datetime],
    status: Any = None,
    reason: Any = None,
    late: Any = None,
    contact_reason: Any = None,
) -> Select[Any]:
    """Counts of one table per direction (and status, reason, answered late and contact
    reason, where it has them) and range, over [first boundary, last boundary) of the
    indexed `moment` column."""
    outcome = [c for c in (status, reason, late, contact_reason) if c is not None]
    query = select(
        literal(kind).label("kind"),
        from_org.label("from_org"),
        to_org.label("to_org"),
        (null() if status is None else status).label("status"),
        (null() if reason is None else reason).label("reason"),
        (null() if late is None else late).label("late"),
        (null() if contact_reason is None else contact_reason).label("contact_reason"),
        bucket(moment, boundaries).label("bucket"),
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
        late=Transfer.answered_after_threshold,
        contact_reason=Transfer.contact_reason,
    )
    signposts = _grouped(
        "signpost",
        Signpost.signposted_at,
        Signpost.from_org,
        Signpost.to_org,
        boundaries,
        contact_reason=Signpost.contact_reason,
    )
    return union_all(transfers, signposts)


# Transfer endings other than connected and failed, each its own measure.
_ENDED_OTHERWISE = {
    TransferStatus.declined: "transfers_declined",
    TransferStatus.caller_hung_up: "callers_hung_up",
    TransferStatus.no_outcome_recorded: "transfers_no_outcome_recorded",
}


_ENDED = {
    TransferStatus.connected,
    TransferStatus.failed,
    *_ENDED_OTHERWISE,
}


def _figures(counts: Counter[str]) -> Figures:
    callbacks = sum(counts[f"callback:{r.value}"] for r in FailureReason)
    otherwise = {name: counts[name] for name in _ENDED_OTHERWISE.values()}
    return Figures(
        warm_transfers_connected=counts["connected"],
        warm_transfers_connected_after_threshold=counts["connected_late"],
        callbacks_wait_threshold_exceeded=counts[
            f"callback:{FailureReason.wait_threshold_exceeded}"
        ],
        callbacks_high_call_volume=counts[f"callback:{FailureReason.high_call_volume}"],
        callback_requests=callbacks,
        **otherwise,
        signposts=counts["signpost"],
        # Every transfer that ended, however it ended, and every signpost.
        total_contacts=counts["connected"]
        + callbacks
        + sum(otherwise.values())
        + counts["signpost"],
    )


ReasonCounts = dict[tuple[Month, Direction], Counter[str | None]]


async def count_contacts(
    session: AsyncSession, months: Sequence[Month], reasons: ReasonCounts | None = None
) -> dict[tuple[Month, Direction], Figures]:
    """Figures per consecutive month and direction; directions with no events are left out.
    Into `reasons`, if given, the same contacts per contact reason (app/reports/reasons.py)."""
    boundaries = [m.utc_range()[0] for m in months] + [months[-1].utc_range()[1]]
    tallies: dict[tuple[Month, Direction], Counter[str]] = {}
    for row in await session.execute(contact_counts_statement(boundaries)):
        if reasons is not None and (row.kind == "signpost" or row.status in _ENDED):
            key = (months[row.bucket], (row.from_org, row.to_org))
            reasons.setdefault(key, Counter())[row.contact_reason] += row.n
        if row.kind == "signpost":
            measure = "signpost"
        elif row.status == TransferStatus.connected:
            measure = "connected"
        elif row.status == TransferStatus.failed:
            measure = f"callback:{row.reason}"
        elif row.status in _ENDED_OTHERWISE:
            measure = _ENDED_OTHERWISE[TransferStatus(row.status)]
        else:
            continue
        key = (months[row.bucket], (row.from_org, row.to_org))
        tallies.setdefault(key, Counter())[measure] += row.n
        if measure == "connected" and row.late:
            tallies[key]["connected_late"] += row.n
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
    for name, nothing in (("callbacks", NO_CALLBACKS), ("answer", NO_ANSWERS)):
        if figure_set.get(name):
            empty = nothing.model_dump(mode="json")
            thawed[name] = {part: {**empty, **values} for part, values in figure_set[name].items()}
    return thawed


async def month_figures(
    session: AsyncSession, routes: RouteTable, month: Month, now: datetime
) -> MonthFigures:
    return (await _count(session, routes, month, now))[0]


async def _count(
    session: AsyncSession, routes: RouteTable, month: Month, now: datetime, *also: Read
) -> tuple[MonthFigures, list[Any]]:
    """The month's figures, and the results of `also`: independent reads, run side by side
    on PostgreSQL over one snapshot (app/core/side_by_side.py)."""
    previous = month.previous()
    months = [previous, month]
    reasons: ReasonCounts = {}
    counts, lives, times, feedback, *more = await side_by_side(
        session,
        lambda s: count_contacts(s, months, reasons),
        lambda s: callback_figures(s, months, now),
        lambda s: answer_times(s, months),
        lambda s: feedback_figures(s, routes, month, now),
        *also,
    )
    rows = []
    for direction in directions(routes, [d for _, d in counts] + [d for _, d in lives]):
        this = counts.get((month, direction), ZERO)
        before = counts.get((previous, direction), ZERO)
        no_times = (None, None)
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
                answer=AnswerFigureSet(
                    this_month=answer_measures(this, times.get((month, direction), no_times)),
                    previous_month=answer_measures(
                        before, times.get((previous, direction), no_times)
                    ),
                ),
                reasons=reason_figures(
                    routes,
                    direction,
                    reasons.get((month, direction), Counter()),
                    reasons.get((previous, direction), Counter()),
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
    return MonthFigures(rows, totals, feedback), more


def _differ(frozen: dict[str, Any], live: MonthFigures) -> bool:
    """Whether counting now gives other figures than the version froze. A version frozen
    before a kind of figure was counted is compared on the figures it has."""
    now = live.frozen()
    for name in set(now) - set(frozen):  # a kind of figure counted since
        now.pop(name)
    pairs = list(zip(frozen["directions"], now["directions"], strict=False))
    pairs.append((frozen["totals"], now["totals"]))
    for before, after in pairs:
        for name in set(after) - set(before):
            after.pop(name)
        # A measure added since is left out of the comparison too.
        for part in _UNMEASURED:
            if part in before and part in after:
                for name in set(after[part]) - set(before[part]):
                    after[part].pop(name)
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


def publication_read(
    row: ReportPublication, signed: Sequence[ReportSignature], bodies: Sequence[str]
) -> Publication:
    return Publication(
        id=row.id,
        version=row.version,
        published_at=row.published_at,
        published_by=PublishedBy(
            key_id=row.published_by_key_id, org=row.published_by_org, name=row.published_by_name
        ),
        due_date=row.due_date,
        on_time=row.on_time if row.completed_at is not None else None,
        fluctuation_note=row.fluctuation_note,
        complete=row.completed_at is not None,
        completed_at=row.completed_at,
        legacy=row.legacy,
        signatures=[signing.signature_read(s) for s in signed],
        awaiting=[] if row.completed_at else signing.awaiting(bodies, signed, row.legacy),
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
    awaiting: list[str]  # bodies yet to sign the latest version
    completed_at: datetime | None  # when the first complete version became complete
    completed_on_time: bool | None


async def month_summaries(
    session: AsyncSession, routes: RouteTable, months: Sequence[Month], now: datetime
) -> list[MonthSummary]:
    """Due date and status of each month, with two queries for their versions."""
    found = await signing.month_signings(session, months, signing.report_bodies(routes))
    summaries = []
    for month in months:
        state = found.get(str(month), signing.NOT_STARTED)
        due = due_date(month)
        summaries.append(
            MonthSummary(
                month=month,
                due_date=due,
                status=signing.status_of(month, now, state, due),
                latest_version=state.latest_version,
                awaiting=state.awaiting,
                completed_at=state.first_completed_at,
                completed_on_time=state.first_complete_on_time,
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
    complete_only: bool = False,
) -> ContactVolumeReport:
    """The month's report: the latest version's figures if there is one (or the version
    asked for), otherwise the figures counted now. `complete_only` (a relationship owner's
    view): only complete versions, never the figures counted now; 404 `report_not_complete`
    when there is none (or the one asked for is not complete)."""
    with metrics.time_report("contact_volumes"):
        return await _build_report(
            session, routes, month, now=now, version=version, complete_only=complete_only
        )


async def _build_report(
    session: AsyncSession,
    routes: RouteTable,
    month: Month,
    *,
    now: datetime,
    version: int | None,
    complete_only: bool = False,
) -> ContactVolumeReport:
    every = await publications(session, month)
    versions = [v for v in every if v.completed_at is not None] if complete_only else every
    shown: ReportPublication | None = versions[-1] if versions else None
    if version is not None:
        shown = next((v for v in versions if v.version == version), None)
        if shown is None and complete_only:
            raise NotFound(
                "report_not_complete",
                f"The report of {month} has no complete version {version}.",
            )
        if shown is None:
            raise NotFound(
                "report_version_not_found", f"The report of {month} has no version {version}."
            )
    if complete_only and shown is None:
        raise NotFound(
            "report_not_complete",
            f"The report of {month} is not complete yet: both bodies have not signed it.",
        )
    bodies = signing.report_bodies(routes)
    ids = [v.id for v in versions]
    reads: list[Read] = [
        lambda s: month_feedback(s, routes, month),
        lambda s: signing.signatures_of(s, ids),
        lambda s: signing.month_signings(s, [month], bodies),
    ]
    live: MonthFigures | None = None
    if complete_only:
        feedback, signed, signings = await side_by_side(session, *reads)
    else:
        live, (feedback, signed, signings) = await _count(session, routes, month, now, *reads)
    figures = MonthFigures.thaw(shown.figures) if shown else live
    assert figures is not None
    state = signings.get(str(month), signing.NOT_STARTED)
    start, end = month.utc_range()
    due = due_date(month)
    return ContactVolumeReport(
        month=str(month),
        previous_month=str(month.previous()),
        period=Period(starts_at=start, ends_at=end),
        due_date=due,
        status=signing.status_of(month, now, state, due),
        awaiting_bodies=state.awaiting,
        published_on_time=state.first_complete_on_time,
        figures_source="published" if shown else "live",
        publication=publication_read(shown, signed[shown.id], bodies) if shown else None,
        live_figures_differ=_differ(shown.figures, live) if shown and live else None,
        directions=figures.directions,
        totals=figures.totals,
        feedback=feedback,
        feedback_figures=figures.feedback_figures,
        versions=[publication_read(v, signed[v.id], bodies) for v in versions],
        generated_at=now,
    )


async def sign(
    session: AsyncSession,
    principal: Principal,
    routes: RouteTable,
    month: Month,
    *,
    fluctuation_note: str,
    now: datetime,
) -> signing.Signed:
    """Sign the month's report for the principal's body (app/reports/signing.py), with the
    figures counted now. Refused while the month is still open."""
    if not has_ended(month, now):
        opens = month.next().first_day()
        raise Conflict(
            "month_not_ended",
            f"{month} has not ended yet: its report can be signed from {opens.day} {opens:%B %Y}.",
        )
    figures = (await month_figures(session, routes, month, now)).frozen()
    return await signing.sign(
        session,
        principal,
        routes,
        month,
        fluctuation_note=fluctuation_note,
        frozen_figures=figures,
        now=now,
    )


async def signed_read(
    session: AsyncSession, routes: RouteTable, signed: signing.Signed
) -> SignedRead:
    bodies = signing.report_bodies(routes)
    signatures = (await signing.signatures_of(session, [signed.publication.id]))[
        signed.publication.id
    ]
    return SignedRead(
        signature=signing.signature_read(signed.signature),
        publication=publication_read(signed.publication, signatures, bodies),
        completed=signed.completed,
    )
