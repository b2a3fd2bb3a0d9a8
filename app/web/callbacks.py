"""The pages of a call back request's life: "Call backs for us" (`/callbacks`), one request's
page (`/callbacks/{id}`) and the team leaders' overview (`/callbacks/overview`).

The receiving body's advisers read their incoming requests, most urgent first, and on a
request's page acknowledge it, record each call and close it or return it; the sending body's
page shows where its request stands and can withdraw it. Every button is a POST form with the
CSRF token that calls the same service as the API (`callbacks.lifecycle`), so the rules and the
codes are the API's; the page's hidden `version` is sent as the API's `If-Match`, so a change
made on a page someone else has changed since is refused (`precondition_failed`). Each answer
is POST/redirect/GET: a success banner, or the refusal in plain words next to the button,
waits on the session's row for the page's next GET (`sessions.keep_for`).

Another body's request is the site's 404 page, from the one access rule (`core.access`).
"""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import phonenumbers
from fastapi import APIRouter, Query, Request, Response

from app.callbacks import lifecycle
from app.callbacks.lifecycle import (
    AttemptResult,
    CallbackOutcome,
    CallbackState,
    CallbackView,
    Direction,
    ReturnReason,
    Side,
)
from app.callbacks.lifecycle_schemas import AttemptCreate
from app.callbacks.models import CallbackRequest
from app.core.deps import Session
from app.core.errors import DomainError
from app.core.months import LONDON
from app.protocol.deps import Context
from app.protocol.routes import RouteTable
from app.web import sessions
from app.web.auth import AdviserPage, TeamLeaderPage, WebUser
from app.web.forms import Form, submitted
from app.web.pages import PageAPIRoute, redirect, render

router = APIRouter(route_class=PageAPIRoute, include_in_schema=False)

# The controls a refusal is shown next to (the error summary links to each by its id).
LABELS = {
    "acknowledge": "taking the call back on",
    "result": "the result of the call",
    "reason": "why it is not for your team",
    "withdraw": "withdrawing the request",
}

RESULT_WORDS = {
    AttemptResult.no_answer: "No answer",
    AttemptResult.voicemail_left: "Voicemail left",
    AttemptResult.busy: "Busy",
    AttemptResult.wrong_number: "Wrong number",
    AttemptResult.reached: "Reached",
}
REASON_WORDS = {
    ReturnReason.not_our_remit: "Not for us",
    ReturnReason.duplicate: "Duplicate",
    ReturnReason.wrong_details: "Wrong details",
}
REASON_HINTS = {
    ReturnReason.not_our_remit: "the complaint is not one your body deals with",
    ReturnReason.duplicate: "the same caller's call back was already asked for",
    ReturnReason.wrong_details: "the details are not enough to call the caller",
}
# The list's filter: what each choice shows.
FILTERS = {
    "open": "Open call backs",
    "overdue": "Overdue call backs",
    "requested": "Not acknowledged yet",
    "acknowledged": "Acknowledged",
    "closed": "Closed call backs",
    "all": "All call backs",
}
PAGE_SIZE = 50
OVERVIEW_SIZE = 50


# --- words --------------------------------------------------------------------------------


def _body(routes: RouteTable, org: str) -> str:
    body = routes.bodies.get(org)
    return body.short_name if body else org.upper()


def _clock(moment: datetime, now: datetime) -> str:
    """A time as people say it on the day: "10:42", with the date when it was another day."""
    local, today = moment.astimezone(LONDON), now.astimezone(LONDON).date()
    if local.date() == today:
        return f"{local:%H:%M}"
    return f"{local:%H:%M} on {local.day} {local:%B}"


def _age(since: datetime, now: datetime) -> str:
    """How long ago, in whole minutes, hours or days."""
    minutes = max(0, int((now - since) / timedelta(minutes=1)))
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} minute{'s' if minutes != 1 else ''} ago"
    hours = minutes // 60
    if hours < 48:
        rest = minutes % 60
        words = f"{hours} hour{'s' if hours != 1 else ''}"
        return f"{words} {rest} minute{'s' if rest != 1 else ''} ago" if rest else f"{words} ago"
    return f"{hours // 24} days ago"


def _phone(number: str) -> str:
    """An E.164 number as people dial it: national for the UK, international otherwise."""
    try:
        parsed = phonenumbers.parse(number, "GB")
    except phonenumbers.NumberParseException:
        return number
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 44
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)


@dataclass(frozen=True)
class Described:
    """A request's state in plain words, for either body's pages."""

    view: CallbackView
    side: Side
    from_body: str
    to_body: str
    acknowledged: str
    attempts: str
    outcome: str | None
    tag: tuple[str, str]  # words, colour
    is_open: bool
    age: str
    phone: str | None

    @property
    def callback(self) -> CallbackRequest:
        return self.view.callback


def outcome_words(view: CallbackView, routes: RouteTable, now: datetime) -> str | None:
    callback = view.callback
    if callback.state != CallbackState.closed or callback.closed_at is None:
        return None
    at = _clock(callback.closed_at, now)
    outcome = callback.outcome
    if outcome == CallbackOutcome.reached:
        return f"Closed at {at}: the caller was called back and spoken to"
    if outcome == CallbackOutcome.unreachable:
        return f"Closed at {at}: the caller could not be reached"
    if outcome == CallbackOutcome.withdrawn:
        return f"Withdrawn by {_body(routes, callback.from_org)} at {at}"
    reason = (
        REASON_WORDS.get(ReturnReason(callback.return_reason)) if callback.return_reason else ""
    )
    return f"Returned by {_body(routes, callback.to_org)} at {at}" + (
        f": {reason.lower()}" if reason else ""
    )


def describe(view: CallbackView, side: Side, routes: RouteTable, now: datetime) -> Described:
    """The request's state as both bodies' pages say it: "Acknowledged by LGSCO at 10:42",
    "2 attempts: no answer 10:45, reached 14:10"."""
    callback = view.callback
    to_body = _body(routes, callback.to_org)
    is_open = callback.state != CallbackState.closed
    if callback.acknowledged_at is not None:
        acknowledged = f"Acknowledged by {to_body} at {_clock(callback.acknowledged_at, now)}"
    else:
        acknowledged = f"Not acknowledged by {to_body}" + (" yet" if is_open else "")
    if view.attempts:
        count = len(view.attempts)
        calls = ", ".join(
            f"{RESULT_WORDS[AttemptResult(a.result)].lower()} {_clock(a.attempted_at, now)}"
            for a in view.attempts
        )
        attempts = f"{count} attempt{'s' if count != 1 else ''}: {calls}"
    else:
        attempts = "No attempts to call yet" if is_open else "No calls were made"
    if view.overdue:
        tag = ("Overdue", "red")
    elif not is_open:
        tag = ("Closed", "grey")
    elif callback.state == CallbackState.acknowledged:
        tag = ("Acknowledged", "blue")
    else:
        tag = ("New", "green")
    caller = view.caller
    return Described(
        view=view,
        side=side,
        from_body=_body(routes, callback.from_org),
        to_body=to_body,
        acknowledged=acknowledged,
        attempts=attempts,
        outcome=outcome_words(view, routes, now),
        tag=tag,
        is_open=is_open,
        age=_age(callback.requested_at, now),
        phone=_phone(caller.contact_number) if caller else None,
    )


def _filter(state: str) -> dict[str, Any]:
    if state == "overdue":
        return {"open_only": True, "overdue": True}
    if state in {s.value for s in CallbackState}:
        return {"state": CallbackState(state)}
    if state == "all":
        return {}
    return {"open_only": True}


# --- Call backs for us --------------------------------------------------------------------


@router.get("/callbacks")
async def callbacks_for_us(
    request: Request,
    user: AdviserPage,
    session: Session,
    ctx: Context,
    state: Annotated[str, Query(max_length=16)] = "open",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The receiving body's requests, most urgent first (the soonest to be closed)."""
    state = state if state in FILTERS else "open"
    views, next_cursor = await lifecycle.list_callbacks(
        session,
        user.principal,
        direction=Direction.incoming,
        now=ctx.now,
        limit=PAGE_SIZE,
        cursor=cursor or None,
        **_filter(state),
    )
    return render(
        request,
        "callbacks.html",
        {
            "rows": [describe(v, Side.receiving, ctx.routes, ctx.now) for v in views],
            "state": state,
            "filters": FILTERS,
            "next_cursor": next_cursor,
            "first_page": cursor is None,
            "own": ctx.routes.bodies[user.principal.body],
        },
    )


@router.get("/callbacks/overview")
async def overview(
    request: Request, user: TeamLeaderPage, session: Session, ctx: Context
) -> Response:
    """Team leaders: their body's open and overdue call backs, incoming and outgoing."""
    directions = []
    for direction in (Direction.incoming, Direction.outgoing):
        open_count, overdue_count = await lifecycle.count_open(
            session, user.principal, direction=direction, now=ctx.now
        )
        views, more = await lifecycle.list_callbacks(
            session,
            user.principal,
            direction=direction,
            now=ctx.now,
            open_only=True,
            limit=OVERVIEW_SIZE,
        )
        side = Side.receiving if direction is Direction.incoming else Side.sending
        directions.append(
            {
                "direction": direction.value,
                "open": open_count,
                "overdue": overdue_count,
                "rows": [describe(v, side, ctx.routes, ctx.now) for v in views],
                "more": more is not None,
            }
        )
    return render(
        request,
        "callbacks_overview.html",
        {"directions": directions, "own": ctx.routes.bodies[user.principal.body]},
    )


# --- one request --------------------------------------------------------------------------


def _path(callback_id: uuid.UUID) -> str:
    return f"/callbacks/{callback_id}"


@router.get("/callbacks/{callback_id}")
async def callback_page(
    request: Request, callback_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    view = await lifecycle.get_callback(session, user.principal, callback_id, ctx.now)
    kept = await sessions.take_for(request, session, _path(callback_id))
    await session.commit()  # the kept banner or form is cleared as it is shown
    form = Form.from_kept(kept, LABELS) or Form(labels=LABELS)
    side = lifecycle.side_of(user.principal, view.callback)
    routes = ctx.routes
    return render(
        request,
        "callback.html",
        {
            "c": describe(view, side, routes, ctx.now),
            "form": form,
            "banner": (kept or {}).get("banner"),
            "from_body": routes.bodies.get(view.callback.from_org),
            "results": [(r.value, words) for r, words in RESULT_WORDS.items()],
            "reasons": [(r.value, REASON_WORDS[r], REASON_HINTS[r]) for r in ReturnReason],
            "result_words": {r.value: words for r, words in RESULT_WORDS.items()},
        },
    )


# Going back (or reloading) to an address a button posted to shows the request's page.
@router.get("/callbacks/{callback_id}/acknowledge")
@router.get("/callbacks/{callback_id}/attempts")
@router.get("/callbacks/{callback_id}/return")
@router.get("/callbacks/{callback_id}/withdraw")
async def back_to_callback(request: Request, callback_id: uuid.UUID, user: AdviserPage) -> Response:
    return redirect(request, _path(callback_id))


def _if_match(form: Form) -> str | None:
    """The page's version as the API's If-Match: a change to a request someone else changed
    since the page was shown is refused."""
    version = form.value("version")
    return f'"{version}"' if version.isdigit() else None


async def _done(
    request: Request, session: Session, callback_id: uuid.UUID, banner: str
) -> Response:
    await sessions.keep_for(request, session, _path(callback_id), {"banner": banner})
    await session.commit()
    return redirect(request, _path(callback_id))


def _code(exc: DomainError) -> str:
    """The refusal's code; another body's request (404) is the site's 404 page instead."""
    if exc.status == 404:
        raise exc
    return exc.code


async def _refused(
    request: Request,
    session: Session,
    callback_id: uuid.UUID,
    form: Form,
    control: str,
    code: str,
) -> Response:
    """Nothing recorded: the problem (`code`) waits next to `control` for the page's GET."""
    form.error(control, code)
    return await _shown(request, session, callback_id, form)


async def _shown(
    request: Request, session: Session, callback_id: uuid.UUID, form: Form
) -> Response:
    """The form and its problems wait for the page's GET (POST/redirect/GET)."""
    await session.rollback()  # nothing a refused change touched is kept
    await sessions.keep_for(request, session, _path(callback_id), form.kept())
    await session.commit()
    return redirect(request, _path(callback_id))


@router.post("/callbacks/{callback_id}/acknowledge")
async def acknowledge(
    request: Request, callback_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """The "Acknowledge" button. No If-Match: of two advisers at once, the second is told
    that someone else took it on (`callback_already_acknowledged`), which says more."""
    form = await submitted(request, LABELS)
    try:
        callback = await lifecycle.acknowledge(session, user.principal, ctx, callback_id)
    except DomainError as exc:
        return await _refused(request, session, callback_id, form, "acknowledge", _code(exc))
    at = _clock(callback.acknowledged_at or ctx.now, ctx.now)
    return await _done(
        request,
        session,
        callback_id,
        f"Acknowledged at {at}: your team has taken this call back on",
    )


@router.post("/callbacks/{callback_id}/attempts")
async def record_attempt(
    request: Request, callback_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """One of the buttons No answer, Voicemail left, Busy, Wrong number and Reached: the call
    made now."""
    form = await submitted(request, LABELS)
    body = form.validate(AttemptCreate, {"result": form.value("result")})
    if body is None:
        return await _shown(request, session, callback_id, form)
    try:
        callback, attempt = await lifecycle.record_attempt(
            session,
            user.principal,
            ctx,
            callback_id,
            result=body.result,
            if_match=_if_match(form),
        )
    except DomainError as exc:
        return await _refused(request, session, callback_id, form, "result", _code(exc))
    banner = f"{RESULT_WORDS[body.result]} recorded at {_clock(attempt.attempted_at, ctx.now)}"
    if callback.state == CallbackState.closed:
        banner += (
            ": the call back is closed"
            if callback.outcome == CallbackOutcome.reached
            else ": the call back is closed, as the caller could not be reached"
        )
    return await _done(request, session, callback_id, banner)


@router.post("/callbacks/{callback_id}/return")
async def return_callback(
    request: Request, callback_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """The "Return" button with its reason: not for us; the request closes."""
    form = await submitted(request, LABELS)
    reason = form.value("reason")
    if reason not in {r.value for r in ReturnReason}:
        form.error("reason", "return_reason_required")
        return await _shown(request, session, callback_id, form)
    try:
        callback = await lifecycle.return_callback(
            session,
            user.principal,
            ctx,
            callback_id,
            reason=ReturnReason(reason),
            if_match=_if_match(form),
        )
    except DomainError as exc:
        return await _refused(request, session, callback_id, form, "reason", _code(exc))
    to = _body(ctx.routes, callback.from_org)
    words = REASON_WORDS[ReturnReason(reason)].lower()
    return await _done(
        request, session, callback_id, f"Returned to {to} ({words}): the call back is closed"
    )


@router.post("/callbacks/{callback_id}/withdraw")
async def withdraw(
    request: Request, callback_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """The sending body's "Withdraw" button, for an open request."""
    form = await submitted(request, LABELS)
    try:
        await lifecycle.withdraw(
            session, user.principal, ctx, callback_id, if_match=_if_match(form)
        )
    except DomainError as exc:
        return await _refused(request, session, callback_id, form, "withdraw", _code(exc))
    return await _done(request, session, callback_id, "Withdrawn: the call back request is closed")


def callback_words(
    view: CallbackView, user: WebUser, routes: RouteTable, now: datetime
) -> Described:
    """The request as the signed-in user's side sees it (the transfer page's summary)."""
    return describe(view, lifecycle.side_of(user.principal, view.callback), routes, now)
