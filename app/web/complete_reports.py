"""The complete reports (ISA Appendix 2 s.6.1): what relationship owners read, and team leaders
too. `/complete-reports` lists every version both bodies have signed, newest first;
`/complete-reports/{month}/versions/{version}` shows one, read-only, with the report page's own
partials: its frozen figures, both bodies' notes and signatures, and its feedback section.

Nothing here is counted now: no live figures, no trend charts, no links to the records behind
a figure, no call back or transfer records, no downloads, no sign form. A version that is not
complete (or does not exist: the two are not told apart) is the 404 page, as the API's
`report_not_complete` is.
"""

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from app.core.deps import ClockDep, Session
from app.core.errors import NotFound
from app.core.months import Month
from app.protocol.deps import Routes
from app.protocol.routes import RouteTable
from app.reports import service, signing
from app.reports.records import FILTERS, REASON
from app.reports.schemas import (
    ANSWER_MEASURES,
    CALLBACK_MEASURES,
    FEEDBACK_MEASURES,
    MEASURES,
)
from app.web.auth import ReportReaderPage
from app.web.feedback import STATE_WORDS
from app.web.pages import PageAPIRoute, PageError, redirect, render
from app.web.reason_chart import reason_charts
from app.web.reports import page_month

router = APIRouter(prefix="/complete-reports", route_class=PageAPIRoute, include_in_schema=False)


def version_path(month: Month | str, version: int) -> str:
    return f"/complete-reports/{month}/versions/{version}"


def _names(routes: RouteTable) -> dict[str, str]:
    return {org: body.short_name for org, body in routes.bodies.items()}


def _both(routes: RouteTable) -> str:
    names = _names(routes)
    return " and ".join(names.get(org, org.upper()) for org in signing.report_bodies(routes))


def _not_complete(routes: RouteTable, month: Month, version: int | None) -> PageError:
    """The 404 page for a version that is not complete, or a month with none (a version that
    does not exist reads the same: whether one is being signed is not for this page to say)."""
    name = f"{month.first_day():%B %Y}"
    first = (
        f"There is no complete version {version} of the {name} report."
        if version
        else f"The {name} report is not complete yet."
    )
    return PageError(
        404,
        "This report is not complete",
        f"{first} A report can be read here once the team leaders of both {_both(routes)} "
        "have signed it.",
        link=("/complete-reports", "See the complete reports"),
    )


@router.get("")
async def list_complete_reports(
    request: Request, user: ReportReaderPage, session: Session, routes: Routes
) -> Response:
    """Every complete version, newest month first and newest version first within a month;
    an older complete version names the one that replaced it."""
    rows = [r for r in await signing.complete_versions(session) if r.completed_at is not None]
    replaced_by: dict[tuple[str, int], int] = {}
    newer: dict[str, int] = {}
    for row in rows:  # newest first, so the version before is the one that replaced it
        if row.month in newer:
            replaced_by[(row.month, row.version)] = newer[row.month]
        newer[row.month] = row.version
    return render(
        request,
        "complete_reports.html",
        {
            "rows": rows,
            "replaced_by": replaced_by,
            "version_path": version_path,
            "both": _both(routes),
        },
    )


@router.get("/{month}")
async def latest_complete_version(
    request: Request, month: str, user: ReportReaderPage, session: Session, routes: Routes
) -> Response:
    """A month's address: its newest complete version."""
    target = page_month(month)
    rows = await signing.complete_versions(session, [target])
    if not rows:
        raise _not_complete(routes, target, None)
    return redirect(request, version_path(target, rows[0].version))


@router.get("/{month}/versions/{version}")
async def complete_version(
    request: Request,
    month: str,
    version: Annotated[int, Path(ge=1)],
    user: ReportReaderPage,
    session: Session,
    routes: Routes,
    clock: ClockDep,
) -> Response:
    target = page_month(month)
    try:
        report = await service.build_report(
            session, routes, target, now=clock.now(), version=version, complete_only=True
        )
    except NotFound as exc:
        if exc.code != "report_not_complete":
            raise
        raise _not_complete(routes, target, version) from exc
    shown = report.publication
    assert shown is not None and shown.complete  # complete_only shows complete versions only
    later = [v.version for v in report.versions if v.version > shown.version]
    return render(
        request,
        "complete_report.html",
        {
            "report": report,
            "shown": shown,
            "replaced_by": min(later) if later else None,
            "others": [v for v in reversed(report.versions) if v.version != shown.version],
            "month": target,
            "last_day": target.next().first_day() - timedelta(days=1),
            "names": _names(routes),
            "bodies": signing.report_bodies(routes),
            "version_path": version_path,
            "measures": MEASURES,
            "callback_measures": CALLBACK_MEASURES,
            "answer_measures": ANSWER_MEASURES,
            "feedback_measures": FEEDBACK_MEASURES,
            "feedback_states": STATE_WORDS,
            "reason_charts": reason_charts(report, target),
            # Nothing links to the records behind a figure on this page.
            "own_body": None,
            "record_measures": FILTERS,
            "reason_measure": REASON,
        },
    )
