from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, status

from app.core.auth import AnyKey, TeamLeader
from app.core.deps import ClockDep, Session
from app.core.months import Month, MonthText
from app.idempotency.api_route import IdempotentAPIRoute
from app.protocol.deps import Routes
from app.reports import service
from app.reports.exports import MEDIA_TYPES, ReportFormat, attachment, negotiate
from app.reports.schemas import ContactVolumeReport, DueDate, DueDates, Publication, PublishRequest
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
    principal: TeamLeader,
    session: Session,
    routes: Routes,
    clock: ClockDep,
    format: FormatQuery = None,
    accept: AcceptHeader = None,
) -> Any:
    """The single monthly report both bodies share: warm transfers, call back requests by
    reason and signposts in each direction, against the previous month, with the month's
    misdirection feedback, due date and status."""
    report = await service.build_report(session, routes, Month.parse(month), now=clock.now())
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
    principal: TeamLeader,
    session: Session,
    routes: Routes,
    clock: ClockDep,
    format: FormatQuery = None,
    accept: AcceptHeader = None,
) -> Any:
    """One published version, with the figures as they were frozen."""
    report = await service.build_report(
        session, routes, Month.parse(month), now=clock.now(), version=version
    )
    return _respond(report, negotiate(format, accept))


@router.post(
    "/contact-volumes/{month}/publish",
    operation_id="publish_contact_volume_report",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "`month_not_ended`: the month is still open."}},
)
async def publish_contact_volume_report(
    month: Annotated[MonthText, Path(description="YYYY-MM")],
    body: PublishRequest,
    principal: TeamLeader,
    session: Session,
    routes: Routes,
    clock: ClockDep,
) -> Publication:
    """Freeze the month's figures as published, with the note on fluctuations. Publishing
    again adds a version; earlier versions stay readable."""
    publication = await service.publish(
        session,
        principal,
        routes,
        Month.parse(month),
        fluctuation_note=body.fluctuation_note,
        now=clock.now(),
    )
    await session.commit()
    return service.publication_read(publication)
