from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, status

from app.core.auth import AnyKey, Principal, ReportReader, Role, TeamLeader
from app.core.deps import ClockDep, Session
from app.core.months import Month, MonthText
from app.idempotency.api_route import IdempotentAPIRoute
from app.protocol.deps import Routes
from app.protocol.routes import RouteTable
from app.reports import service, signing
from app.reports.exports import MEDIA_TYPES, ReportFormat, attachment, negotiate
from app.reports.schemas import (
    CompleteVersion,
    CompleteVersions,
    ContactVolumeReport,
    DueDate,
    DueDates,
    Publication,
    PublishRequest,
    SignRequest,
)
from app.reports.schemas import Signed as SignedRead
from app.reports.workdays import DUE_WORKING_DAY, due_date

router = APIRouter(prefix="/v1/reports", tags=["reports"], route_class=IdempotentAPIRoute)

FORMATS = {
    200: {
        "description": "The report. JSON by default; CSV with `Accept: text/csv` or "
        "`?format=csv`; XLSX with `?format=xlsx`. The figures are the same in all three.",
        "content": {
            MEDIA_TYPES[ReportFormat.csv].split(";")[0]: {"schema": {"type": "string"}},
            MEDIA_TYPES[ReportFormat.xlsx]: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}

FormatQuery = Annotated[
    ReportFormat | None, Query(alias="format", description="json, csv or xlsx; overrides Accept.")
]
AcceptHeader = Annotated[str | None, Header(include_in_schema=False)]


def _owner(principal: Principal) -> bool:
    return principal.role is Role.relationship_owner


def _respond(report: ContactVolumeReport, fmt: ReportFormat) -> Any:
    return report if fmt is ReportFormat.json else attachment(report, fmt)


@router.get("/due-dates", operation_id="list_report_due_dates")
async def list_due_dates(
    principal: AnyKey, year: Annotated[int, Query(ge=2000, le=2100, examples=[2027])]
) -> DueDates:
    """When each month's report of `year` is due: the 10th working day of the next month
    (weekends and England and Wales bank holidays are not working days)."""
    months = [Month(year, m) for m in range(1, 13)]
    return DueDates(
        year=year,
        rule=f"{DUE_WORKING_DAY}th working day of the following month in England and Wales",
        items=[DueDate(month=str(m), due_date=due_date(m)) for m in months],
    )


@router.get(
    "/contact-volumes/{month}",
    operation_id="get_contact_volume_report",
    response_model=ContactVolumeReport,
    responses=FORMATS,  # type: ignore[arg-type]
)
async def get_contact_volume_report(
    month: Annotated[MonthText, Path(description="YYYY-MM, a calendar month in UK time")],
    principal: ReportReader,
    session: Session,
    routes: Routes,
    clock: ClockDep,
    format: FormatQuery = None,
    accept: AcceptHeader = None,
) -> Any:
    """The single monthly report both bodies share: warm transfers, call back requests by
    reason and signposts in each direction, against the previous month, with the month's
    misdirection feedback, due date and status. A relationship owner reads the latest
    complete version only (404 `report_not_complete` until there is one)."""
    report = await service.build_report(
        session, routes, Month.parse(month), now=clock.now(), complete_only=_owner(principal)
    )
    return _respond(report, negotiate(format, accept))


@router.get(
    "/contact-volumes/{month}/versions/{version}",
    operation_id="get_contact_volume_report_version",
    response_model=ContactVolumeReport,
    responses=FORMATS,  # type: ignore[arg-type]
)
async def get_contact_volume_report_version(
    month: Annotated[MonthText, Path(description="YYYY-MM")],
    version: Annotated[int, Path(ge=1)],
    principal: ReportReader,
    session: Session,
    routes: Routes,
    clock: ClockDep,
    format: FormatQuery = None,
    accept: AcceptHeader = None,
) -> Any:
    """One version, with the figures as they were frozen. A relationship owner reads only
    complete versions (404 `report_not_complete` for any other)."""
    report = await service.build_report(
        session,
        routes,
        Month.parse(month),
        now=clock.now(),
        version=version,
        complete_only=_owner(principal),
    )
    return _respond(report, negotiate(format, accept))


_SIGN_CONFLICTS = {
    409: {
        "description": "`month_not_ended`: the month is still open; `already_signed`: your "
        "body has signed these figures with this note already."
    }
}


async def _sign(
    month: str,
    body: SignRequest,
    principal: Principal,
    session: Session,
    routes: RouteTable,
    clock: ClockDep,
) -> SignedRead:
    signed = await service.sign(
        session,
        principal,
        routes,
        Month.parse(month),
        fluctuation_note=body.fluctuation_note,
        now=clock.now(),
    )
    read = await service.signed_read(session, routes, signed)
    await session.commit()
    return read


@router.post(
    "/contact-volumes/{month}/sign",
    operation_id="sign_contact_volume_report",
    status_code=status.HTTP_201_CREATED,
    responses=_SIGN_CONFLICTS,  # type: ignore[arg-type]
)
async def sign_contact_volume_report(
    month: Annotated[MonthText, Path(description="YYYY-MM")],
    body: SignRequest,
    principal: TeamLeader,
    session: Session,
    routes: Routes,
    clock: ClockDep,
) -> SignedRead:
    """Sign the month's report for your body, with your body's reasons for fluctuations. The
    signature goes on the latest version if its figures are the ones counted now and your
    body has not signed it; otherwise it makes a new version (the other body signs that one
    in turn). A version is complete when both bodies have signed it."""
    return await _sign(month, body, principal, session, routes, clock)


@router.post(
    "/contact-volumes/{month}/publish",
    operation_id="publish_contact_volume_report",
    status_code=status.HTTP_201_CREATED,
    responses=_SIGN_CONFLICTS,  # type: ignore[arg-type]
)
async def publish_contact_volume_report(
    month: Annotated[MonthText, Path(description="YYYY-MM")],
    body: PublishRequest,
    principal: TeamLeader,
    session: Session,
    routes: Routes,
    clock: ClockDep,
) -> Publication:
    """The former name of `sign`, kept for existing clients: signs for your body and answers
    the version signed."""
    signed = await _sign(
        month,
        SignRequest(fluctuation_note=body.fluctuation_note),
        principal,
        session,
        routes,
        clock,
    )
    return signed.publication


@router.get("/complete-versions", operation_id="list_complete_report_versions")
async def list_complete_versions(
    principal: ReportReader, session: Session, routes: Routes
) -> CompleteVersions:
    """Every complete version of the monthly report (signed by both bodies), newest first:
    what relationship owners read."""
    rows = await signing.complete_versions(session)
    signed = await signing.signatures_of(session, [r.id for r in rows])
    return CompleteVersions(
        items=[
            CompleteVersion(
                month=r.month,
                version=r.version,
                due_date=r.due_date,
                completed_at=r.completed_at,
                on_time=r.on_time,
                legacy=r.legacy,
                signatures=[signing.signature_read(s) for s in signed[r.id]],
            )
            for r in rows
            if r.completed_at is not None
        ]
    )
