"""Team leaders' pages for the monthly contact-volume report."""

from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request, Response
from pydantic import ValidationError

from app.callbacks import lifecycle
from app.core.deps import ClockDep, Session, SettingsDep
from app.core.errors import Conflict
from app.core.months import LONDON, Month
from app.core.settings import Settings
from app.protocol.deps import Routes
from app.reports import service, signing
from app.reports.exports import ReportFormat, attachment
from app.reports.records import FILTERS, REASON
from app.reports.schemas import (
    ANSWER_MEASURES,
    CALLBACK_MEASURES,
    FEEDBACK_MEASURES,
    MEASURES,
    ContactVolumeReport,
    PublishRequest,
)
from app.web import chart, messages, sessions
from app.web.auth import TeamLeaderPage, WebUser, check_csrf
from app.web.feedback import STATE_WORDS
from app.web.pages import PageAPIRoute, PageError, redirect, render, with_headers
from app.web.reason_chart import reason_charts
from app.web.report_records import records_url

router = APIRouter(prefix="/reports", route_class=PageAPIRoute, include_in_schema=False)

LISTED_MONTHS = 13  # this month and the twelve before it


def page_month(text: str) -> Month:
    """The month of a page's address, or the 404 page."""
    try:
        return Month.parse(text)
    except ValueError as exc:
        raise PageError(
            404, "Page not found", "Months are written like 2026-10. Check the address."
        ) from exc


async def _first_month(session: Session, settings: Settings) -> Month | None:
    """The first month the service has a report for: the setting, else the first record's."""
    if settings.first_report_month:
        return Month.parse(settings.first_report_month)
    return await service.first_month_with_records(session)


@router.get("")
async def list_reports(
    request: Request,
    user: TeamLeaderPage,
    session: Session,
    routes: Routes,
    clock: ClockDep,
    settings: SettingsDep,
    month: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    if month:  # the "go to a month" form
        return redirect(request, f"/reports/{page_month(month)}")
    now = clock.now()
    # Back twelve months, but not before the service's first month: months before it existed
    # would otherwise all show as overdue.
    first = await _first_month(session, settings)
    months = [Month.containing(now)]
    while len(months) < LISTED_MONTHS and first is not None and months[-1] > first:
        months.append(months[-1].previous())
    summaries = await service.month_summaries(session, routes, months, now)
    # Past the due date and not complete: no body signed, or one is still to sign.
    overdue = [
        s
        for s in summaries
        if s.status == "overdue"
        or (
            s.status == "awaiting_signature"
            and s.completed_at is None
            and s.due_date < now_day(now)
        )
    ]
    names = {org: body.short_name for org, body in routes.bodies.items()}
    return render(
        request, "reports.html", {"summaries": summaries, "overdue": overdue, "names": names}
    )


async def _report_page(
    request: Request,
    user: WebUser,
    session: Session,
    routes: Routes,
    clock: ClockDep,
    month: Month,
    version: int | None,
    *,
    note: str | None = None,
    errors: dict[str, str] | None = None,
    signed: int | None = None,
) -> Response:
    now = clock.now()
    report = await service.build_report(session, routes, month, now=now, version=version)
    first = await _first_month(session, request.app.state.settings)
    trend = await service.trend(session, routes, month)
    scale = chart.shared_scale(trend)
    charts = [
        (series, chart.svg(series, scale, f"chart-{series.direction[0]}-{series.direction[1]}"))
        for series in trend
    ]
    hours = chart.hours_scale(trend)
    hour_charts = [
        (
            series,
            chart.hours_svg(series, hours, f"hours-{series.direction[0]}-{series.direction[1]}"),
        )
        for series in trend
        if any(median is not None for _, median, _ in series.first_attempt_hours)
    ]
    # Open requests that retention keeps however old (docs/SECURITY.md): listed, not purged.
    max_days = request.app.state.settings.open_callback_max_days
    stale = await lifecycle.count_stale(
        session, user.principal.body, now - timedelta(days=max_days)
    )
    latest = report.versions[-1] if report.versions else None
    return render(
        request,
        "report.html",
        {
            "report": report,
            "month": month,
            "last_day": month.next().first_day() - timedelta(days=1),
            "names": {org: body.short_name for org, body in routes.bodies.items()},
            "measures": MEASURES,
            "charts": charts,
            "hour_charts": hour_charts,
            "stale": stale,
            "stale_days": max_days,
            "callback_measures": CALLBACK_MEASURES,
            # Issue 16: time to answer, reasons, and each count's records.
            "answer_measures": ANSWER_MEASURES,
            "reason_charts": reason_charts(report, month),
            "own_body": user.principal.body,
            "records_url": records_url,
            "record_measures": FILTERS,
            "reason_measure": REASON,
            "feedback_measures": FEEDBACK_MEASURES,
            "feedback_states": STATE_WORDS,
            "series": chart.SERIES,
            "can_publish": service.has_ended(month, now),
            # Before the service's first month nothing was due: never "overdue".
            "before_service": not report.versions and (first is None or month < first),
            "next_version": (latest.version + 1) if latest else 1,
            "note": note if note is not None else _latest_note(report, user.principal.body),
            "errors": errors or {},
            "signed": signed,
            "my_body": user.principal.body,
            "bodies": signing.report_bodies(routes),
            "query": f"?version={version}" if version else "",
        },
    )


@router.get("/{month}")
async def report_page(
    request: Request,
    month: str,
    user: TeamLeaderPage,
    session: Session,
    routes: Routes,
    clock: ClockDep,
    version: Annotated[int | None, Query(ge=1)] = None,
    signed: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    target = page_month(month)
    # A refused publish (POST/redirect/GET) left its note and problem for this page, once.
    kept = await sessions.take_for(request, session, f"/reports/{target}")
    await session.commit()
    if kept is not None:
        return await _report_page(
            request,
            user,
            session,
            routes,
            clock,
            target,
            None,
            note=str(kept.get("note", "")),
            errors={str(k): str(v) for k, v in dict(kept.get("errors") or {}).items()},
        )
    return await _report_page(request, user, session, routes, clock, target, version, signed=signed)


async def _refused(
    request: Request, session: Session, month: Month, note: str, errors: dict[str, str]
) -> Response:
    """POST/redirect/GET for a refused publish: a reload of the page does not post again."""
    await session.rollback()
    path = f"/reports/{month}"
    await sessions.keep_for(request, session, path, {"note": note, "errors": errors})
    await session.commit()
    return redirect(request, path)


@router.get("/{month}/contact-volumes.{extension}")
async def download(
    request: Request,
    month: str,
    extension: Literal["csv", "xlsx"],
    user: TeamLeaderPage,
    session: Session,
    routes: Routes,
    clock: ClockDep,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    report = await service.build_report(
        session, routes, page_month(month), now=clock.now(), version=version
    )
    return with_headers(request, attachment(report, ReportFormat(extension)))


@router.get("/{month}/sign")
@router.get("/{month}/publish")
async def back_to_report(request: Request, month: str, user: TeamLeaderPage) -> Response:
    """Going back to the address the sign form posted to: the month's page."""
    return redirect(request, f"/reports/{page_month(month)}")


@router.post("/{month}/sign")
@router.post("/{month}/publish")  # the form's former address
async def sign(
    request: Request,
    month: str,
    user: TeamLeaderPage,
    session: Session,
    routes: Routes,
    clock: ClockDep,
    fluctuation_note: Annotated[str, Form(max_length=8000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    check_csrf(request, csrf_token)
    target = page_month(month)
    try:
        body = PublishRequest(fluctuation_note=fluctuation_note)
    except ValidationError as exc:
        kind = exc.errors()[0]["type"]
        message = {
            "blank": "Enter the reasons for fluctuations",
            "string_too_short": "Enter the reasons for fluctuations",
            "string_too_long": "The reasons for fluctuations must be 4,000 characters or fewer",
        }.get(kind, "The reasons for fluctuations must not contain control characters")
        return await _refused(
            request, session, target, fluctuation_note, {"fluctuation_note": message}
        )
    try:
        signed = await service.sign(
            session,
            user.principal,
            routes,
            target,
            fluctuation_note=body.fluctuation_note,
            now=clock.now(),
        )
        version = signed.publication.version
        await session.commit()
    except Conflict as exc:
        return await _refused(
            request, session, target, fluctuation_note, {"sign": messages.say(exc.code)}
        )
    return redirect(request, f"/reports/{target}?signed={version}")


def _latest_note(report: ContactVolumeReport, body: str) -> str:
    """What `body` last wrote, for its form: its note on the newest version it signed."""
    for version in reversed(report.versions):
        for signature in version.signatures:
            if signature.org == body:
                return signature.fluctuation_note
    return ""


def now_day(now: datetime) -> date:
    return now.astimezone(LONDON).date()
