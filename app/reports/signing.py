"""The report both bodies sign (ISA Appendix 2 s.6.1): each body's team leader writes the body's
own reasons for fluctuations and signs the month's version; a version is complete when every
body of the report has signed it, and only complete versions reach the relationship owners.

Signing when the figures counted now, or the body's own note, differ from the latest version's
makes a new version signed by that body alone; the other body signs that version in turn.
Signing is serialised per month (a transaction-scoped advisory lock on PostgreSQL; SQLite has
one writer at a time), and the unique (month, version) and (version, body) constraints stop
a second version or a second signature should two ever meet; the loser decides again on what
the winner left.
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.auth import Principal
from app.core.errors import Conflict, Forbidden
from app.core.months import LONDON, Month
from app.keys.models import ApiKey
from app.protocol.routes import RouteTable
from app.reports.models import ReportPublication, ReportSignature
from app.reports.schemas import ReportStatus, Signature, SignedBy
from app.reports.workdays import due_date

# How often a signing that met a concurrent one is decided again before 409.
SIGN_TRIES = 3


def report_bodies(routes: RouteTable) -> list[str]:
    """The bodies whose team leaders sign the report: every body of the route table."""
    return list(routes.bodies)


def _lock_key(month: Month) -> int:
    digest = hashlib.sha256(f"report-signing:{month}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def lock_month(session: AsyncSession, month: Month) -> None:
    """Hold the month's signing lock until the transaction ends (PostgreSQL only: SQLite
    lets one transaction write at a time anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(month)})


async def signatures_of(
    session: AsyncSession, publication_ids: Sequence[object]
) -> dict[object, list[ReportSignature]]:
    """The signatures of each version, in the order they were made."""
    if not publication_ids:
        return {}
    rows = await session.scalars(
        select(ReportSignature)
        .where(ReportSignature.publication_id.in_(publication_ids))
        .order_by(ReportSignature.signed_at, ReportSignature.org)
    )
    found: dict[object, list[ReportSignature]] = {pid: [] for pid in publication_ids}
    for row in rows:
        found[row.publication_id].append(row)
    return found


def signature_read(row: ReportSignature) -> Signature:
    return Signature(
        org=row.org,
        fluctuation_note=row.fluctuation_note,
        signed_at=row.signed_at,
        signed_by=SignedBy(key_id=row.signed_by_key_id, name=row.signed_by_name),
    )


def awaiting(bodies: Sequence[str], signed: Sequence[ReportSignature], legacy: bool) -> list[str]:
    """The bodies yet to sign a version (none for a legacy version: it was complete)."""
    if legacy:
        return []
    done = {s.org for s in signed}
    return [b for b in bodies if b not in done]


@dataclass(frozen=True)
class Signed:
    publication: ReportPublication
    signature: ReportSignature
    completed: bool  # this signature completed the version


async def sign(
    session: AsyncSession,
    principal: Principal,
    routes: RouteTable,
    month: Month,
    *,
    fluctuation_note: str,
    frozen_figures: dict[str, object],
    now: datetime,
) -> Signed:
    """Sign the month's report for the principal's body with its note. Adds the signature to
    the latest version when its figures are the ones counted now and the body has not signed
    it; otherwise makes a new version. Refused while the month is still open, and when the
    body has already signed these very figures with this very note."""
    if now < month.utc_range()[1]:
        opens = month.next().first_day()
        raise Conflict(
            "month_not_ended",
            f"{month} has not ended yet: its report can be signed from {opens.day} {opens:%B %Y}.",
        )
    bodies = report_bodies(routes)
    if principal.body not in bodies:
        raise Forbidden("not_a_report_body", "Only the bodies of the report sign it.")
    for _ in range(SIGN_TRIES):
        try:
            return await _sign_once(
                session, principal, bodies, month, fluctuation_note, frozen_figures, now
            )
        except IntegrityError:
            # A concurrent signing took the version number or this body's place on the
            # version: decide again on what it left (the request has written nothing else).
            await session.rollback()
    raise Conflict(
        "publication_conflict",
        f"Another team leader signed the report of {month} at the same moment: reload and "
        "check it.",
    )


async def _sign_once(
    session: AsyncSession,
    principal: Principal,
    bodies: list[str],
    month: Month,
    note: str,
    figures: dict[str, object],
    now: datetime,
) -> Signed:
    await lock_month(session, month)
    latest = await session.scalar(
        select(ReportPublication)
        .where(ReportPublication.month == str(month))
        .order_by(ReportPublication.version.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    )
    signed = (await signatures_of(session, [latest.id]))[latest.id] if latest else []
    mine = next((s for s in signed if s.org == principal.body), None)
    key_name = (
        await session.scalar(select(ApiKey.name).where(ApiKey.id == principal.key_id))
    ) or ""
    same_figures = latest is not None and latest.figures == figures
    if latest is not None and same_figures and mine is not None and mine.fluctuation_note == note:
        raise Conflict(
            "already_signed",
            f"Your body has already signed version {latest.version} of the report of {month} "
            "with these figures and this note.",
        )
    if latest is not None and same_figures and mine is None and not latest.legacy:
        version = latest
    else:
        due = due_date(month)
        version = ReportPublication(
            month=str(month),
            version=(latest.version if latest else 0) + 1,
            figures=figures,
            fluctuation_note=note,
            due_date=due,
            on_time=False,  # decided when the version is complete
            published_at=now,
            published_by_key_id=principal.key_id,
            published_by_org=principal.body,
            published_by_name=key_name,
            legacy=False,
        )
        session.add(version)
        await session.flush()
        signed = []
    signature = ReportSignature(
        publication_id=version.id,
        org=principal.body,
        fluctuation_note=note,
        signed_at=now,
        signed_by_key_id=principal.key_id,
        signed_by_name=key_name,
    )
    session.add(signature)
    await session.flush()
    completed = not awaiting(bodies, [*signed, signature], legacy=False)
    if completed:
        version.completed_at = now
        version.on_time = now.astimezone(LONDON).date() <= version.due_date
        await session.flush()
    audit.record(
        session,
        principal,
        audit.AuditAction.sign,
        audit.RecordType.report_publication,
        version.id,
        org=principal.body,
        now=now,
    )
    return Signed(version, signature, completed)


# --- complete versions (the relationship owners' reports, the reminders' question) ----------


async def month_is_complete(session: AsyncSession, month: Month) -> bool:
    """Whether the month's report has a complete version (signed by every body, or a legacy
    publication): it has been made available to the relationship owners."""
    found = await session.scalar(
        select(ReportPublication.id)
        .where(ReportPublication.month == str(month), ReportPublication.completed_at.is_not(None))
        .limit(1)
    )
    return found is not None


async def complete_versions(
    session: AsyncSession, months: Sequence[Month] | None = None
) -> list[ReportPublication]:
    """Complete versions, newest month first and, within a month, newest version first;
    of `months` only, if given."""
    query = select(ReportPublication).where(ReportPublication.completed_at.is_not(None))
    if months is not None:
        query = query.where(ReportPublication.month.in_([str(m) for m in months]))
    return list(
        (
            await session.scalars(
                query.order_by(ReportPublication.month.desc(), ReportPublication.version.desc())
            )
        ).all()
    )


# --- status ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MonthSigning:
    """Where a month's signing stands, for its status."""

    latest_version: int | None
    awaiting: list[str]  # bodies yet to sign the latest version
    first_completed_at: datetime | None
    first_complete_on_time: bool | None


NOT_STARTED = MonthSigning(None, [], None, None)


async def month_signings(
    session: AsyncSession, months: Sequence[Month], bodies: Sequence[str]
) -> dict[str, MonthSigning]:
    """Where each month's signing stands, from two queries for all of them."""
    rows = (
        await session.scalars(
            select(ReportPublication)
            .where(ReportPublication.month.in_([str(m) for m in months]))
            .order_by(ReportPublication.month, ReportPublication.version)
        )
    ).all()
    latest: dict[str, ReportPublication] = {}
    first_complete: dict[str, ReportPublication] = {}
    for row in rows:
        latest[row.month] = row
        if row.completed_at is not None and row.month not in first_complete:
            first_complete[row.month] = row
    orgs = await session.execute(
        select(ReportSignature.publication_id, ReportSignature.org).where(
            ReportSignature.publication_id.in_([r.id for r in latest.values()])
        )
    )
    signed_by: dict[object, set[str]] = {}
    for publication_id, org in orgs:
        signed_by.setdefault(publication_id, set()).add(org)
    found = {}
    for month, row in latest.items():
        first = first_complete.get(month)
        found[month] = MonthSigning(
            latest_version=row.version,
            awaiting=[]
            if row.completed_at is not None
            else [b for b in bodies if b not in signed_by.get(row.id, set())],
            first_completed_at=first.completed_at if first else None,
            first_complete_on_time=first.on_time if first else None,
        )
    return found


def status_of(month: Month, now: datetime, signing: MonthSigning, due: date) -> ReportStatus:
    """Open until the month ends; then due, overdue, awaiting a body's signature, complete
    or complete late (on time is the first complete version's completion against `due`)."""
    if signing.latest_version is not None and signing.awaiting:
        return ReportStatus.awaiting_signature
    if signing.first_completed_at is not None:
        return (
            ReportStatus.complete if signing.first_complete_on_time else ReportStatus.complete_late
        )
    if now < month.utc_range()[1]:
        return ReportStatus.open
    today = now.astimezone(LONDON).date()
    return ReportStatus.due if today <= due else ReportStatus.overdue


async def first_signed_month(session: AsyncSession) -> str | None:
    return await session.scalar(select(func.min(ReportPublication.month)))
