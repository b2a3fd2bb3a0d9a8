"""The records behind a figure of the report: for each measure, the one filter that lists
exactly the contacts it counts, over transfers and signposts together.

A body lists only its own records (the ones it sent: `core.access.visible_to`), so a figure
of the direction a body sends has its list; the other body's figures are the other body's.
The filters are the report's own: a transfer by the UK month of its `outcome_at`, a signpost
by that of its `signposted_at`, outcomes as `transfers.service.outcome_clause` counts them.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    String,
    and_,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.access import visible_to
from app.core.database import UTCDateTime
from app.core.months import Month
from app.core.pagination import decode_cursor, encode_cursor
from app.reports.schemas import ANSWER_MEASURES, MEASURES
from app.signposts.models import Signpost
from app.transfers.models import Transfer
from app.transfers.schemas import TransferOutcome
from app.transfers.service import outcome_clause

Ending = TransferOutcome
EVERY_ENDING = tuple(TransferOutcome)
REASON = "contacts_by_reason"  # the measure of a contact reason's figure


@dataclass(frozen=True)
class RecordFilter:
    """The transfers (by how they ended) and whether the signposts a measure counts."""

    outcomes: tuple[TransferOutcome, ...]
    signposts: bool = False


# Every count of the report (its measures, time to answer's counts, a reason's contacts).
FILTERS: dict[str, RecordFilter] = {
    "warm_transfers_connected": RecordFilter(
        (Ending.connected_within_threshold, Ending.connected_after_threshold)
    ),
    "warm_transfers_connected_after_threshold": RecordFilter((Ending.connected_after_threshold,)),
    "callbacks_wait_threshold_exceeded": RecordFilter((Ending.callback_wait_threshold_exceeded,)),
    "callbacks_high_call_volume": RecordFilter((Ending.callback_high_call_volume,)),
    "callback_requests": RecordFilter(
        (Ending.callback_wait_threshold_exceeded, Ending.callback_high_call_volume)
    ),
    "transfers_declined": RecordFilter((Ending.declined,)),
    "callers_hung_up": RecordFilter((Ending.caller_hung_up,)),
    "transfers_no_outcome_recorded": RecordFilter((Ending.no_outcome_recorded,)),
    "signposts": RecordFilter((), signposts=True),
    "total_contacts": RecordFilter(EVERY_ENDING, signposts=True),
    "answered": RecordFilter((Ending.connected_within_threshold, Ending.connected_after_threshold)),
    "answered_within_threshold": RecordFilter((Ending.connected_within_threshold,)),
    "waited": RecordFilter(
        (
            Ending.connected_within_threshold,
            Ending.connected_after_threshold,
            Ending.callback_wait_threshold_exceeded,
            Ending.caller_hung_up,
        )
    ),
    REASON: RecordFilter(EVERY_ENDING, signposts=True),
}

# What each list is called on its page.
TITLES: dict[str, str] = {
    **dict(MEASURES),
    **{name: label for name, label in ANSWER_MEASURES if name in FILTERS},
    REASON: "Contacts by reason",
}


@dataclass(frozen=True)
class ContactRecord:
    """One row of a list: a transfer or a signpost, with no caller details."""

    kind: str  # "transfer" | "signpost"
    id: uuid.UUID
    moment: datetime  # when it counts: outcome_at or signposted_at
    to_org: str
    outcome: TransferOutcome | None  # None for a signpost
    contact_reason: str | None
    answer_seconds: float | None  # connected transfers only
    sender_reference: str | None


def _outcome_of(row: Any) -> TransferOutcome | None:
    if row.kind != "transfer":
        return None
    if row.status == "connected":
        return Ending.connected_after_threshold if row.late else Ending.connected_within_threshold
    if row.status == "failed":
        return TransferOutcome(f"callback_{row.failure_reason}")
    return TransferOutcome(row.status)


def _statement(
    body: str,
    month: Month,
    to_org: str,
    measure: RecordFilter,
    reason: str | None,
    by_reason: bool,
) -> Any:
    start, end = month.utc_range()
    parts = []
    if measure.outcomes:
        clauses = [
            visible_to(Transfer, body),
            Transfer.to_org == to_org,
            Transfer.outcome_at >= start,
            Transfer.outcome_at < end,
            or_(*(outcome_clause(o) for o in measure.outcomes)),
        ]
        if by_reason:
            clauses.append(
                Transfer.contact_reason.is_(None)
                if reason is None
                else Transfer.contact_reason == reason
            )
        parts.append(
            select(
                literal("transfer").label("kind"),
                Transfer.id.label("id"),
                Transfer.outcome_at.label("moment"),
                Transfer.to_org.label("to_org"),
                Transfer.status.label("status"),
                Transfer.failure_reason.label("failure_reason"),
                Transfer.answered_after_threshold.label("late"),
                Transfer.contact_reason.label("contact_reason"),
                Transfer.wait_started_at.label("wait_started_at"),
                Transfer.connected_at.label("connected_at"),
                Transfer.sender_reference.label("sender_reference"),
            ).where(and_(*clauses))
        )
    if measure.signposts:
        clauses = [
            visible_to(Signpost, body),
            Signpost.to_org == to_org,
            Signpost.signposted_at >= start,
            Signpost.signposted_at < end,
        ]
        if by_reason:
            clauses.append(
                Signpost.contact_reason.is_(None)
                if reason is None
                else Signpost.contact_reason == reason
            )
        parts.append(
            select(
                literal("signpost").label("kind"),
                Signpost.id.label("id"),
                Signpost.signposted_at.label("moment"),
                Signpost.to_org.label("to_org"),
                cast(null(), String).label("status"),
                cast(null(), String).label("failure_reason"),
                cast(false(), Boolean).label("late"),
                Signpost.contact_reason.label("contact_reason"),
                cast(null(), UTCDateTime).label("wait_started_at"),
                cast(null(), UTCDateTime).label("connected_at"),
                Signpost.sender_reference.label("sender_reference"),
            ).where(and_(*clauses))
        )
    return union_all(*parts).subquery("records")


@dataclass(frozen=True)
class RecordPage:
    total: int
    items: list[ContactRecord]
    next_cursor: str | None


async def list_records(
    session: AsyncSession,
    body: str,
    month: Month,
    to_org: str,
    measure: str,
    *,
    reason: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> RecordPage:
    """The body's records a measure counts in `month` towards `to_org`, newest first, a
    keyset page at a time, with how many there are in all. For `REASON`, those with the
    contact reason `reason` (None: those with none given)."""
    records = _statement(body, month, to_org, FILTERS[measure], reason, measure == REASON)
    total = await session.scalar(select(func.count()).select_from(records))
    query = select(records)
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        query = query.where(
            or_(records.c.moment < at, and_(records.c.moment == at, records.c.id < last_id))
        )
    query = query.order_by(records.c.moment.desc(), records.c.id.desc()).limit(limit + 1)
    rows = (await session.execute(query)).all()
    items = [
        ContactRecord(
            kind=row.kind,
            id=row.id,
            moment=row.moment,
            to_org=row.to_org,
            outcome=_outcome_of(row),
            contact_reason=row.contact_reason,
            answer_seconds=(row.connected_at - row.wait_started_at).total_seconds()
            if row.kind == "transfer" and row.status == "connected" and row.connected_at
            else None,
            sender_reference=row.sender_reference,
        )
        for row in rows[:limit]
    ]
    next_cursor = encode_cursor(items[-1].moment, items[-1].id) if len(rows) > limit else None
    return RecordPage(total=total or 0, items=items, next_cursor=next_cursor)
