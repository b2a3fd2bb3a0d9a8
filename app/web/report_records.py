"""The records behind a figure of the monthly report: `/reports/{month}/records`, for team
leaders, of their own body only (the contacts it sent), with no caller details."""

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from app.core.deps import Session
from app.core.months import Month
from app.core.pagination import Cursor
from app.protocol.deps import Routes
from app.protocol.routes import RouteTable
from app.reports.reasons import NO_REASON, reason_label
from app.reports.records import FILTERS, REASON, TITLES, ContactRecord, list_records
from app.reports.service import direction_label
from app.transfers.schemas import TransferOutcome
from app.web.auth import TeamLeaderPage
from app.web.pages import PageAPIRoute, PageError, render

router = APIRouter(prefix="/reports", route_class=PageAPIRoute, include_in_schema=False)

PAGE_SIZE = 50
NO_REASON_VALUE = "none"  # ?reason=none: the contacts recorded with no reason

# How a contact ended, in the words the page shows.
ENDINGS = {
    TransferOutcome.connected_within_threshold: "Connected within the wait limit",
    TransferOutcome.connected_after_threshold: "Connected after the wait limit",
    TransferOutcome.callback_wait_threshold_exceeded: "Call back requested: the wait was too long",
    TransferOutcome.callback_high_call_volume: "Call back requested: the lines were busy",
    TransferOutcome.declined: "The caller did not want to be transferred",
    TransferOutcome.caller_hung_up: "The caller hung up while waiting",
    TransferOutcome.no_outcome_recorded: "No outcome recorded",
}


def records_url(
    month: Month, to_org: str, measure: str, reason: str | None = None, cursor: str | None = None
) -> str:
    """The address of the list behind one figure (the report page links each count to it)."""
    query = {"to_org": to_org, "measure": measure}
    if measure == REASON:
        query["reason"] = reason or NO_REASON_VALUE
    if cursor:
        query["cursor"] = cursor
    return f"/reports/{month}/records?{urlencode(query)}"


def _not_found() -> PageError:
    return PageError(404, "Page not found", "Check the address, or go back to the report.")


def _row(routes: RouteTable, body: str, record: ContactRecord) -> dict[str, object]:
    direction = (body, record.to_org)
    receiver = routes.body(record.to_org)
    return {
        "record": record,
        "contact": "Warm transfer" if record.kind == "transfer" else "Signpost",
        "ending": ENDINGS[record.outcome]
        if record.outcome
        else f"Told to contact {receiver.short_name if receiver else record.to_org.upper()}",
        "reason": reason_label(routes, direction, record.contact_reason),
    }


@router.get("/{month}/records")
async def records_page(
    request: Request,
    month: str,
    user: TeamLeaderPage,
    session: Session,
    routes: Routes,
    to_org: Annotated[str, Query(max_length=32)] = "",
    measure: Annotated[str, Query(max_length=64)] = "",
    reason: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Cursor = None,
) -> Response:
    body = user.principal.body
    try:
        target = Month.parse(month)
    except ValueError as exc:
        raise _not_found() from exc
    if measure not in FILTERS or to_org not in routes.bodies or to_org == body or body is None:
        raise _not_found()
    direction = (body, to_org)
    chosen = None if reason in (None, NO_REASON_VALUE) else reason
    page = await list_records(
        session,
        body,
        target,
        to_org,
        measure,
        reason=chosen,
        limit=PAGE_SIZE,
        cursor=cursor,
    )
    title = TITLES[measure]
    if measure == REASON:
        title = f"Contacts with the reason: {reason_label(routes, direction, chosen)}"
    return render(
        request,
        "report_records.html",
        {
            "month": target,
            "title": title,
            "direction": direction_label(routes, direction),
            "page": page,
            "rows": [_row(routes, body, r) for r in page.items],
            "first_page": cursor is None,
            "first_url": records_url(target, to_org, measure, chosen),
            "next_url": records_url(target, to_org, measure, chosen, page.next_cursor)
            if page.next_cursor
            else None,
            "no_reason": NO_REASON,
        },
    )
