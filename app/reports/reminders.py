"""The monthly report's reminders and completion notices, by email through the outbox.

A periodic job the outbox worker runs (handed to it by `app.wiring`) looks at the two months
before the current one (Europe/London) and, for each body in the route table:

- "due soon": the month's report is not complete and its due date (`due_date`, the 10th
  working day of the following month) is 3 working days away or less, but not past. It goes
  to the body's `report_mailbox` on the working day 3 working days before the due date, or
  at the worker's first round after that while the report is still not complete and not yet
  due (the due date itself included).
- "overdue": the report is not complete and the due date has passed. It goes from the day
  after the due date.
- "completed": a version of the report became complete. It goes to the body's
  `relationship_owner_mailbox`, if the body has one; naming the month and version, with a
  link to the report's page, and whether it was completed on time or late.

Each notice is sent once per month, kind (and version, for "completed") and mailbox: the
`report_notices` row is inserted with ON CONFLICT DO NOTHING in the same transaction as its
outbox message, so two workers or a restart cannot queue it twice.

When the worker was down across a window, a notice goes late, once: a "due soon" missed
before the due date is never sent (the "overdue" takes its place the day after); an
"overdue" or "completed" goes at the first round after the worker is back, as long as the
month is still one of the two the job looks at (a worker down for more than about a month
loses the notices of the month that fell out of view, rather than sending old news). Months
before the first month with any record (the first month the reports list shows) have no
notices: a new installation is not told that the reports of months before it are overdue.

The emails carry no personal data: the month, the dates, the version and a link (by month
and version only).
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum

from sqlalchemy import Boolean, Date, Integer, String, UniqueConstraint, Uuid, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from app.core.database import Base, UTCDateTime
from app.core.months import LONDON, Month
from app.core.periodic import PeriodicJob
from app.outbox import service as outbox
from app.outbox.kinds import EmailKind, Envelope
from app.outbox.rendering import Renderer
from app.protocol.routes import RouteTable
from app.reports import signing
from app.reports.service import first_month_with_records
from app.reports.workdays import due_date, is_working_day

# "due in 3 working days" (issue 17).
DUE_SOON_WORKING_DAYS = 3
# The months the job looks at: the one before the current month, and the one before that.
MONTHS_LOOKED_AT = 2
# How often the worker looks (a few small queries); five minutes late is of no matter.
INTERVAL_SECONDS = 300.0


class NoticeKind(StrEnum):
    due_soon = "due_soon"
    overdue = "overdue"
    completed = "completed"


class ReportNotice(Base):
    """One notice about a month's report, to one mailbox: the record its outbox message is
    about (`subject_id`), and the proof it was queued (the unique key makes it once only).

    Holds no personal data: the month, the dates, the version and the mailbox."""

    __tablename__ = "report_notices"
    __table_args__ = (UniqueConstraint("month", "kind", "version", "mailbox"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM, a Europe/London calendar month
    kind: Mapped[str] = mapped_column(String(16))  # NoticeKind
    # The complete version a "completed" notice is about; 0 for "due soon" and "overdue",
    # which are about the month (a number, not NULL, so the unique key holds on both).
    version: Mapped[int] = mapped_column(Integer)
    org: Mapped[str] = mapped_column(String(32))  # the body whose mailbox it is
    mailbox: Mapped[str] = mapped_column(String(254))
    due_date: Mapped[date] = mapped_column(Date)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    on_time: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


# ---- Completeness: signing's rule (reports/signing.py): a version is complete once every
# body of the report has signed it (or it is a legacy single-signed publication).


@dataclass(frozen=True)
class CompleteVersion:
    version: int
    completed_at: datetime
    on_time: bool


month_is_complete = signing.month_is_complete


async def complete_versions(session: AsyncSession, month: Month) -> list[CompleteVersion]:
    """The month's complete versions, oldest first, each at the moment it became complete."""
    rows = await signing.complete_versions(session, [month])
    return [
        CompleteVersion(row.version, row.completed_at, bool(row.on_time))
        for row in sorted(rows, key=lambda row: row.version)
        if row.completed_at is not None
    ]


# ---- When each notice is due -----------------------------------------------------------------


def due_soon_day(month: Month) -> date:
    """The working day `DUE_SOON_WORKING_DAYS` working days before the report's due date."""
    day = due_date(month)
    left = DUE_SOON_WORKING_DAYS
    while left:
        day -= timedelta(days=1)
        if is_working_day(day):
            left -= 1
    return day


def reminder_due(month: Month, today: date) -> NoticeKind | None:
    """The reminder a not yet complete report of `month` calls for on `today` (UK date)."""
    if today > due_date(month):
        return NoticeKind.overdue
    if today >= due_soon_day(month):
        return NoticeKind.due_soon
    return None


def months_looked_at(now: datetime) -> list[Month]:
    months = [Month.containing(now).previous()]
    while len(months) < MONTHS_LOOKED_AT:
        months.append(months[-1].previous())
    return months


# ---- Queueing, once --------------------------------------------------------------------------

EMAIL_KIND_OF = {
    NoticeKind.due_soon: "report_due_soon",
    NoticeKind.overdue: "report_overdue",
    NoticeKind.completed: "report_completed",
}


async def _queue_once(
    session: AsyncSession,
    *,
    month: Month,
    kind: NoticeKind,
    org: str,
    mailbox: str,
    now: datetime,
    version: CompleteVersion | None = None,
) -> bool:
    """Insert the notice unless it exists (whoever inserted it), and queue its email in the
    same transaction; True when this call queued it."""
    notice_id = uuid.uuid4()
    values = {
        "id": notice_id,
        "month": str(month),
        "kind": kind.value,
        "version": version.version if version else 0,
        "org": org,
        "mailbox": mailbox,
        "due_date": due_date(month),
        "completed_at": version.completed_at if version else None,
        "on_time": version.on_time if version else None,
        "created_at": now,
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    inserted = await session.scalar(
        insert(ReportNotice)
        .values(values)
        .on_conflict_do_nothing(index_elements=["month", "kind", "version", "mailbox"])
        .returning(ReportNotice.id)
    )
    if inserted is None:
        return False
    outbox.enqueue(
        session, kind=EMAIL_KIND_OF[kind], subject_id=notice_id, to_address=mailbox, now=now
    )
    return True


async def queue_report_notices(
    sessionmaker: async_sessionmaker[AsyncSession], routes: RouteTable, now: datetime
) -> int:
    """Queue every notice due at `now` that was not queued before; returns how many."""
    today = now.astimezone(LONDON).date()
    async with sessionmaker() as session:
        first = await first_month_with_records(session)
    if first is None:
        return 0  # nothing recorded yet: no month has a report to make
    queued = 0
    # Not the months before the first record (the reports list starts there too): a new
    # installation is not told its first months' reports are overdue.
    for month in (m for m in months_looked_at(now) if m >= first):
        # One transaction per month: its notices and their outbox messages commit together.
        async with sessionmaker() as session:
            if await month_is_complete(session, month):
                for version in await complete_versions(session, month):
                    for body in routes.bodies.values():
                        if body.relationship_owner_mailbox:
                            queued += await _queue_once(
                                session,
                                month=month,
                                kind=NoticeKind.completed,
                                org=body.id,
                                mailbox=str(body.relationship_owner_mailbox),
                                now=now,
                                version=version,
                            )
            elif (kind := reminder_due(month, today)) is not None:
                for body in routes.bodies.values():
                    queued += await _queue_once(
                        session,
                        month=month,
                        kind=kind,
                        org=body.id,
                        mailbox=str(body.report_mailbox),
                        now=now,
                    )
            await session.commit()
    return queued


def report_notices_job(
    sessionmaker: async_sessionmaker[AsyncSession], routes: RouteTable
) -> PeriodicJob:
    """The report's reminders and completion notices, at most every INTERVAL_SECONDS."""

    async def run(now: datetime) -> int:
        return await queue_report_notices(sessionmaker, routes, now)

    return PeriodicJob("report_notices", INTERVAL_SECONDS, run)


# ---- The emails ------------------------------------------------------------------------------


def _long_date(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B %Y}"


def _month_name(month: Month) -> str:
    return f"{month.first_day():%B %Y}"


def notice_subject(notice: ReportNotice) -> str:
    month = _month_name(Month.parse(notice.month))
    if notice.kind == NoticeKind.due_soon:
        return f"The contact-volume report for {month} is due in 3 working days"
    if notice.kind == NoticeKind.overdue:
        return f"The contact-volume report for {month} is overdue"
    return f"The contact-volume report for {month} is complete (version {notice.version})"


def render_notice(
    renderer: Renderer, notice: ReportNotice, *, to_address: str, message_id: str, now: datetime
) -> EmailMessage:
    """A notice's email, as of `now`."""
    body = renderer.body(notice.org)
    month = Month.parse(notice.month)
    page = f"/reports/{month}"
    if notice.kind == NoticeKind.completed:
        page += f"?version={notice.version}"
    completed_on = (
        _long_date(notice.completed_at.astimezone(LONDON).date()) if notice.completed_at else None
    )
    return renderer.message(
        f"report_{notice.kind}",
        {
            "body": body,
            "month": _month_name(month),
            "due_date": _long_date(notice.due_date),
            "version": notice.version,
            "completed_on": completed_on,
            "on_time": notice.on_time,
            # HANDOFF_PUBLIC_URL set: a link to the report's page; unset: where to find it.
            "link": f"{renderer.public_url}{page}" if renderer.public_url else None,
        },
        subject=notice_subject(notice),
        to_address=to_address,
        # Replies reach the body's team leaders, who prepare and sign the report.
        reply_to=str(body.report_mailbox),
        message_id=message_id,
        now=now,
    )


async def _load(session: AsyncSession, ids: list[uuid.UUID]) -> Mapping[uuid.UUID, ReportNotice]:
    rows = await session.scalars(select(ReportNotice).where(ReportNotice.id.in_(ids)))
    return {notice.id: notice for notice in rows}


def _render(renderer: Renderer, notice: ReportNotice, envelope: Envelope) -> EmailMessage:
    return render_notice(
        renderer,
        notice,
        to_address=envelope.to_address,
        message_id=envelope.message_id,
        now=envelope.now,
    )


REPORT_DUE_SOON_EMAIL = EmailKind(
    name=EMAIL_KIND_OF[NoticeKind.due_soon],
    load=_load,
    render=_render,
    label="Report due in 3 working days",
)
REPORT_OVERDUE_EMAIL = EmailKind(
    name=EMAIL_KIND_OF[NoticeKind.overdue], load=_load, render=_render, label="Report overdue"
)
REPORT_COMPLETED_EMAIL = EmailKind(
    name=EMAIL_KIND_OF[NoticeKind.completed],
    load=_load,
    render=_render,
    label="Report version complete",
)
REPORT_EMAILS = (REPORT_DUE_SOON_EMAIL, REPORT_OVERDUE_EMAIL, REPORT_COMPLETED_EMAIL)
