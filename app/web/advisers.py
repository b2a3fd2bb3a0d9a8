"""Advisers' pages: the transfer assistant (`/transfer`) and the misdirection feedback form
(`/feedback/new`; the feedback's own page and "Feedback about us" are in app/web/feedback.py).

Every write goes through the API's request models and services (`transfers.service`,
`signposts.service`, `feedback.service`), so the pages keep the API's rules and its error codes;
the threshold, in particular, is the service's (`must_request_callback`), never the page's.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from app.callbacks import lifecycle
from app.callbacks.schemas import FailureReason
from app.core.deps import Session
from app.core.errors import DomainError
from app.core.rules import not_in_future
from app.core.validation import split_references
from app.feedback import service as feedback_service
from app.feedback.schemas import FeedbackCreate
from app.protocol.context import RequestContext
from app.protocol.deps import Context, Routes
from app.protocol.routes import Route, RouteTable
from app.signposts import service as signposts
from app.signposts.schemas import SignpostCreate
from app.transfers import service as transfers
from app.transfers.models import Transfer
from app.transfers.schemas import (
    OPEN_STATUSES,
    TransferConnect,
    TransferCreate,
    TransferDeclined,
    TransferFail,
    TransferHungUp,
)
from app.transfers.views import view_transfer
from app.web import sessions
from app.web.auth import AdviserPage, WebUser
from app.web.callbacks import callback_words
from app.web.forms import (
    PERMISSION_STAMPED,
    STAMP_PERMISSION,
    Form,
    date_and_time,
    permission_to_share,
    submitted,
)
from app.web.pages import PageAPIRoute, redirect, render

router = APIRouter(route_class=PageAPIRoute, include_in_schema=False)

START_LABELS = {
    "to_org": "the body you are transferring to",
    "topic": "what the complaint is about",
    "contact_reason": "the reason for the call",
    "sender_reference": "your case reference",
    PERMISSION_STAMPED: "when the caller gave permission to share",
}
CALLBACK_LABELS = {
    "caller.name": "the caller's name",
    "caller.contact_number": "the caller's contact number",
    "caller.provider": "the name of the service provider",
    "sender_reference": "your case reference",
    PERMISSION_STAMPED: "when the caller gave permission to share",
}
FEEDBACK_LABELS = {
    "about_org": "which body the feedback is about",
    "case_references": "the case references",
    "reason_for_contact": "the reason for contacting",
    "names_and_times": "the names and times",
    "correct_advice": "the correct advice",
    "suggested_action": "a suggested course of action",
    "occurred_at": "when it happened",
}
FEEDBACK_TEXTS = ("reason_for_contact", "names_and_times", "correct_advice", "suggested_action")
DELIVERY_LABELS = {
    "pending": "Queued",
    "sending": "Sending",
    "retrying": "Not sent yet: it will be tried again",
    "sent": "Sent",
    "dead": "Not delivered: ask your team leader or the service's operator",
}


def _routes_from(routes: RouteTable, org: str) -> list[Route]:
    return [route for route in routes if route.from_org == org]


def _optional(value: str) -> str | None:
    return value or None


def _body_name(routes: RouteTable, org: str) -> str | None:
    """The body as people say it ("LGSCO"), for the pages' sentences."""
    body = routes.bodies.get(org)
    return body.short_name if body else None


async def _shown_on(request: Request, session: Session, path: str, form: Form) -> Response:
    """POST/redirect/GET for a form that recorded nothing (refused, or only stamped): what was
    typed and its problems wait on the session's row for the GET of `path`, so a reload of
    the page the browser lands on shows the page again and never sends the form a second time.
    """
    await session.rollback()  # nothing a refused attempt touched is kept
    await sessions.keep_for(request, session, path, form.kept())
    await session.commit()
    return redirect(request, path)


async def _kept_form(
    request: Request, session: Session, path: str, labels: dict[str, str]
) -> Form | None:
    """The form kept for `path` by `_shown_on`, once (it is cleared as it is shown)."""
    form = Form.from_kept(await sessions.take_for(request, session, path), labels)
    await session.commit()  # cleared, shown or (past its minutes) not
    return form


def _callback_form(routes: RouteTable, transfer: Transfer, form: Form | None = None) -> Form:
    form = form or Form(labels=CALLBACK_LABELS)
    form.context.update(
        body=_body_name(routes, transfer.to_org), threshold=transfer.wait_threshold_seconds
    )
    return form


# The transfer assistant ---------------------------------------------------------------------


async def _start_page(
    request: Request,
    user: WebUser,
    routes: RouteTable,
    form: Form,
    *,
    signposted: Any = None,
) -> Response:
    choices = _routes_from(routes, user.principal.body)
    chosen = routes.route(user.principal.body, form.value("to_org"))
    if chosen is None and len(choices) == 1:
        chosen = choices[0]
        form.values["to_org"] = chosen.to_org
    return render(
        request,
        "transfer_start.html",
        {
            "form": form,
            "choices": choices,
            "to_choices": [(r.to_org, routes.bodies[r.to_org].name, "") for r in choices],
            "topics": [
                (topic, option.label, f"press {option.option}")
                for topic, option in (chosen.ivr_options.items() if chosen else ())
            ],
            "route": chosen,
            "reasons": list(chosen.contact_reasons.items()) if chosen else [],
            "bodies": routes.bodies,
            "own": routes.bodies[user.principal.body],
            "signposted": signposted,
        },
    )


@router.get("/transfer")
async def transfer_start(
    request: Request,
    user: AdviserPage,
    session: Session,
    routes: Routes,
    to_org: Annotated[str, Query(max_length=32)] = "",
    signposted: uuid.UUID | None = None,
) -> Response:
    done = None
    if signposted is not None:
        done = await signposts.get_signpost(session, user.principal, signposted)
    form = await _kept_form(request, session, "/transfer", START_LABELS)
    if form is None:
        form = Form(values={"to_org": to_org}, labels=START_LABELS)
    return await _start_page(request, user, routes, form, signposted=done)


# Going back (or reloading) to the address a form posted to is a GET: it shows the page the
# form is on, never "method not allowed".
@router.get("/transfer/signpost")
async def back_to_start(request: Request, user: AdviserPage) -> Response:
    return redirect(request, "/transfer")


@router.get("/transfer/{transfer_id}/connected")
@router.get("/transfer/{transfer_id}/declined")
@router.get("/transfer/{transfer_id}/hung-up")
@router.get("/transfer/{transfer_id}/callback")
async def back_to_transfer(request: Request, transfer_id: uuid.UUID, user: AdviserPage) -> Response:
    return redirect(request, f"/transfer/{transfer_id}")


def _start_request(form: Form, now: datetime) -> dict[str, Any]:
    return {
        "to_org": form.value("to_org"),
        "topic": _optional(form.value("topic")),
        "sender_reference": _optional(form.value("sender_reference")),
        "contact_reason": _optional(form.value("contact_reason")),
        "permission_to_share_at": permission_to_share(form, now),
    }


@router.post("/transfer")
async def dialling_now(
    request: Request, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """The "Dialling now" button starts the transfer; "Permission given now" only stamps."""
    form = await submitted(request, START_LABELS)
    form.context["body"] = _body_name(ctx.routes, form.value("to_org"))
    data = _start_request(form, ctx.now)
    if form.value("action") == STAMP_PERMISSION:
        return await _shown_on(request, session, "/transfer", form)
    body = form.validate(TransferCreate, data)
    # The service's rules too, all at once, even where the model refused a field.
    draft = body or TransferCreate.model_construct(**data)
    form.problems(transfers.start_problems(user.principal, ctx, draft))
    if body is None or form.errors:
        return await _shown_on(request, session, "/transfer", form)
    try:
        transfer, _ = await transfers.start_transfer(session, user.principal, ctx, body)
    except DomainError as exc:
        return await _shown_on(request, session, "/transfer", form.refused(exc))
    await session.commit()
    return redirect(request, f"/transfer/{transfer.id}")


@router.post("/transfer/signpost")
async def signposted_instead(
    request: Request, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """The "Signposted instead" button of the same form: its body and reference, if any."""
    form = await submitted(request, START_LABELS)
    form.context["body"] = _body_name(ctx.routes, form.value("to_org"))
    data = {
        "to_org": form.value("to_org"),
        "sender_reference": _optional(form.value("sender_reference")),
        "contact_reason": _optional(form.value("contact_reason")),
    }
    body = form.validate(SignpostCreate, data)
    if body is None:
        return await _shown_on(request, session, "/transfer", form)
    try:
        signpost = signposts.record_signpost(session, user.principal, ctx, body)
    except DomainError as exc:
        return await _shown_on(request, session, "/transfer", form.refused(exc))
    await session.commit()
    return redirect(request, f"/transfer?signposted={signpost.id}")


async def _transfer_page(
    request: Request,
    user: WebUser,
    session: Session,
    routes: RouteTable,
    now: datetime,
    transfer: Transfer,
    *,
    form: Form | None = None,
    lines_busy: bool = False,
) -> Response:
    view = view_transfer(transfer, routes, now)
    callback = None
    if transfer.status == "failed":
        callback_id = await transfers.callback_request_id_for(session, transfer.id)
        if callback_id is not None:
            found = await lifecycle.get_callback(session, user.principal, callback_id, now)
            # Where the call back stands, as it changes: acknowledged, each call, the outcome.
            callback = callback_words(found, user, routes, now)
    lines_busy = lines_busy or form is not None and form.value("reason") == "high_call_volume"
    return render(
        request,
        "transfer.html",
        {
            "transfer": transfer,
            "to_body": routes.bodies[transfer.to_org],
            "own": routes.bodies[transfer.from_org],
            "ivr": view.ivr,
            "dial_number": view.dial_number,
            "now": now,
            "deadline": view.deadline,
            "seconds_left": view.seconds_left,
            # Without script the page reloads just after the deadline, and shows the form.
            "refresh_seconds": view.seconds_left + 1,
            "overdue": view.overdue,
            # The callback form is shown by the server once the service says the wait is over,
            # or when the adviser says the lines are busy; the script only shows it sooner.
            "show_callback": transfer.status == "waiting" and (view.overdue or lines_busy),
            # Waiting, or closed by the worker with no outcome and still the same UK day: the
            # adviser may record how it ended (the service decides; the page only offers).
            "can_record": transfer.status in OPEN_STATUSES,
            "contact_reason": view.route.contact_reason_label(transfer.contact_reason)
            if view.route
            else None,
            "reason": (
                FailureReason.wait_threshold_exceeded
                if view.overdue or not lines_busy
                else FailureReason.high_call_volume
            ),
            "form": _callback_form(routes, transfer, form),
            "callback": callback,
            "delivery_labels": DELIVERY_LABELS,
        },
    )


@router.get("/transfer/{transfer_id}")
async def transfer_page(
    request: Request,
    transfer_id: uuid.UUID,
    user: AdviserPage,
    session: Session,
    ctx: Context,
    busy: bool = False,
) -> Response:
    transfer = await transfers.get_transfer(session, user.principal, transfer_id)
    form = await _kept_form(request, session, f"/transfer/{transfer_id}", CALLBACK_LABELS)
    return await _transfer_page(
        request, user, session, ctx.routes, ctx.now, transfer, form=form, lines_busy=busy
    )


@router.post("/transfer/{transfer_id}/connected")
async def connected(
    request: Request, transfer_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """The "Connected" button, and "They answered: connected" beside the call back form: a
    call answered after the threshold is still a warm transfer."""
    await submitted(request, CALLBACK_LABELS)
    transfer = await transfers.get_transfer(session, user.principal, transfer_id, for_update=True)
    try:
        transfers.connect(session, transfer, user.principal, ctx, TransferConnect())
    except DomainError as exc:
        form = _callback_form(ctx.routes, transfer).refused(exc)
        return await _shown_on(request, session, f"/transfer/{transfer_id}", form)
    await session.commit()
    return redirect(request, f"/transfer/{transfer_id}")


async def _ended(
    request: Request,
    transfer_id: uuid.UUID,
    user: WebUser,
    session: Session,
    ctx: RequestContext,
    body: TransferDeclined | TransferHungUp,
) -> Response:
    await submitted(request, CALLBACK_LABELS)
    transfer = await transfers.get_transfer(session, user.principal, transfer_id, for_update=True)
    try:
        transfers.end(session, transfer, user.principal, ctx, body)
    except DomainError as exc:
        form = _callback_form(ctx.routes, transfer).refused(exc)
        return await _shown_on(request, session, f"/transfer/{transfer_id}", form)
    await session.commit()
    return redirect(request, f"/transfer/{transfer_id}")


@router.post("/transfer/{transfer_id}/declined")
async def caller_declined(
    request: Request, transfer_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """The "Caller declined" button: the caller did not want to be transferred."""
    return await _ended(request, transfer_id, user, session, ctx, TransferDeclined())


@router.post("/transfer/{transfer_id}/hung-up")
async def caller_hung_up(
    request: Request, transfer_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """The "Caller hung up" button: the caller ended the call while waiting."""
    return await _ended(request, transfer_id, user, session, ctx, TransferHungUp())


@router.post("/transfer/{transfer_id}/callback")
async def send_callback_request(
    request: Request, transfer_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """The "Send call back request" button: the transfer fails with the caller's details."""
    form = await submitted(request, CALLBACK_LABELS)
    reference = _optional(form.value("sender_reference"))
    permission = permission_to_share(form, ctx.now)
    data = {
        "reason": form.value("reason"),
        "caller": {
            "name": form.value("caller.name"),
            "contact_number": form.value("caller.contact_number"),
            "provider": form.value("caller.provider"),
        },
        "sender_reference": reference,
        "permission_to_share_at": permission,
    }
    transfer = await transfers.get_transfer(session, user.principal, transfer_id, for_update=True)
    _callback_form(ctx.routes, transfer, form)
    # "Permission given now" only stamps: the stamp is shown, nothing is recorded yet.
    if form.value("action") != STAMP_PERMISSION:
        body = form.validate(TransferFail, data)
        # Every rule at once: the caller's details, the reference and the permission.
        reason = form.value("reason")
        # A draft of what was typed, for the service's rules where the model refused a field.
        fields: dict[str, Any] = {
            "reason": FailureReason(reason) if reason in set(FailureReason) else None,
            "sender_reference": reference,
            "permission_to_share_at": permission,
        }
        draft = body or TransferFail.model_construct(**fields)
        form.problems(transfers.failure_problems(transfer, ctx, draft))
        if body is not None and not form.errors:
            try:
                await transfers.fail(session, transfer, user.principal, ctx, body)
            except DomainError as exc:
                form.refused(exc)
            else:
                await session.commit()
                return redirect(request, f"/transfer/{transfer_id}")
    return await _shown_on(request, session, f"/transfer/{transfer_id}", form)


# Misdirection feedback ----------------------------------------------------------------------


def _feedback_page(request: Request, user: WebUser, routes: RouteTable, form: Form) -> Response:
    about = [routes.bodies[r.to_org] for r in _routes_from(routes, user.principal.body)]
    choices = [(b.id, b.name, f"emailed to {b.feedback_mailbox}") for b in about]
    return render(request, "feedback_new.html", {"form": form, "about": choices})


@router.get("/feedback")
async def feedback_home(request: Request, user: AdviserPage) -> Response:
    return redirect(request, "/feedback/new")


@router.get("/feedback/new")
async def feedback_form(
    request: Request, user: AdviserPage, session: Session, routes: Routes
) -> Response:
    form = await _kept_form(request, session, "/feedback/new", FEEDBACK_LABELS)
    return _feedback_page(request, user, routes, form or Form(labels=FEEDBACK_LABELS))


@router.post("/feedback/new")
async def submit_feedback(
    request: Request,
    user: AdviserPage,
    session: Session,
    ctx: Context,
) -> Response:
    form = await submitted(request, FEEDBACK_LABELS)
    references = split_references(form.value("case_references"))
    occurred_at = date_and_time(form, "occurred_at")
    data = {
        "about_org": form.value("about_org"),
        "case_references": references,
        **{name: form.value(name) for name in FEEDBACK_TEXTS},
        "occurred_at": occurred_at,
    }
    body = form.validate(FeedbackCreate, data)
    if occurred_at is not None:  # the service's rule, checked with the others
        try:
            not_in_future(occurred_at, ctx.now, ctx.skew_seconds, "")
        except DomainError as exc:
            form.error("occurred_at", exc.code)
    if body is None or form.errors:
        return await _shown_on(request, session, "/feedback/new", form)
    try:
        feedback = feedback_service.submit_feedback(session, user.principal, ctx, body)
    except DomainError as exc:
        return await _shown_on(request, session, "/feedback/new", form.refused(exc))
    await session.commit()
    return redirect(request, f"/feedback/{feedback.id}")
