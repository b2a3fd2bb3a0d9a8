"""Feedback pages beyond the form (`/feedback/new`, app/web/advisers.py): "Feedback about us"
for the body a feedback is about (`/feedback/incoming`), and one page per feedback
(`/feedback/{id}`): the sender reads it with its state and answer; the body it is about reads
it, acknowledges it and records its response (app/feedback/lifecycle.py), through the same
services and error codes as the API.
"""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.core.auth import Role
from app.core.deps import Session
from app.core.errors import DomainError
from app.core.months import Month
from app.feedback import lifecycle
from app.feedback import service as feedback_service
from app.feedback.lifecycle import Direction, FeedbackState
from app.feedback.models import Feedback
from app.feedback.schemas import FeedbackResponse
from app.protocol.deps import Context, Routes
from app.protocol.routes import RouteTable
from app.web.advisers import _kept_form, _shown_on
from app.web.auth import AdviserPage, WebUser
from app.web.forms import Form, submitted
from app.web.pages import PageAPIRoute, redirect, render

router = APIRouter(route_class=PageAPIRoute, include_in_schema=False)

ANSWER_LABELS = {
    "remedial_action": "the remedial action taken",
    "training_issue": "whether it was a training issue",
}
# A feedback's state in words, as both bodies' pages show it.
STATE_WORDS = {
    FeedbackState.submitted.value: "New",
    FeedbackState.acknowledged.value: "Acknowledged",
    FeedbackState.responded.value: "Answered",
}
YES_NO = {"yes": True, "no": False}
PAGE_SIZE = 50


@router.get("/feedback/incoming")
async def feedback_about_us(
    request: Request,
    user: AdviserPage,
    session: Session,
    routes: Routes,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """The feedback about the adviser's body, newest first, with its state in words."""
    rows, next_cursor = await feedback_service.list_feedback(
        session,
        user.principal,
        month=None,
        limit=PAGE_SIZE,
        cursor=cursor,
        direction=Direction.incoming,
    )
    return render(
        request,
        "feedback_incoming.html",
        {
            "items": rows,
            "next_cursor": next_cursor,
            "bodies": routes.bodies,
            "own": routes.bodies[user.principal.body],
            "states": STATE_WORDS,
        },
    )


def _page(
    request: Request, user: WebUser, routes: RouteTable, feedback: Feedback, form: Form | None
) -> Response:
    if lifecycle.is_receiving(user.principal, feedback):
        return render(
            request,
            "feedback_answer.html",
            {
                "feedback": feedback,
                "sender": routes.bodies[feedback.from_org],
                "state": STATE_WORDS[feedback.state],
                "open": feedback.state != FeedbackState.responded,
                "acknowledged": feedback.state != FeedbackState.submitted,
                "form": form or Form(labels=ANSWER_LABELS),
                "yes_no": [("yes", "Yes", ""), ("no", "No", "")],
            },
        )
    month = Month.containing(feedback.submitted_at)
    return render(
        request,
        "feedback_sent.html",
        {
            "feedback": feedback,
            "about": routes.bodies[feedback.about_org],
            "state": STATE_WORDS[feedback.state],
            # Team leaders read the month's feedback on the report page; advisers cannot.
            "report_link": (
                f"/reports/{month}#feedback" if user.principal.can(Role.team_leader) else None
            ),
            "month": month,
            # A refused answer from the sender's side (e.g. an old tab): its problem, shown.
            "form": form,
        },
    )


@router.get("/feedback/{feedback_id}")
async def feedback_page(
    request: Request,
    feedback_id: uuid.UUID,
    user: AdviserPage,
    session: Session,
    routes: Routes,
) -> Response:
    feedback = await feedback_service.get_feedback(session, user.principal, feedback_id)
    form = await _kept_form(request, session, f"/feedback/{feedback_id}", ANSWER_LABELS)
    return _page(request, user, routes, feedback, form)


# Going back (or reloading) to the address a form posted to shows the feedback's page.
@router.get("/feedback/{feedback_id}/acknowledge")
@router.get("/feedback/{feedback_id}/response")
async def back_to_feedback(request: Request, feedback_id: uuid.UUID, user: AdviserPage) -> Response:
    return redirect(request, f"/feedback/{feedback_id}")


@router.post("/feedback/{feedback_id}/acknowledge")
async def acknowledge(
    request: Request, feedback_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    await submitted(request, ANSWER_LABELS)  # its CSRF token
    path = f"/feedback/{feedback_id}"
    try:
        await lifecycle.acknowledge(session, user.principal, ctx, feedback_id)
    except DomainError as exc:
        if exc.status == 404:
            raise
        return await _shown_on(request, session, path, Form(labels=ANSWER_LABELS).refused(exc))
    await session.commit()
    return redirect(request, path)


@router.post("/feedback/{feedback_id}/response")
async def respond(
    request: Request, feedback_id: uuid.UUID, user: AdviserPage, session: Session, ctx: Context
) -> Response:
    """The "Send the answer" button: every problem at once, the values kept."""
    form = await submitted(request, ANSWER_LABELS)
    path = f"/feedback/{feedback_id}"
    training = YES_NO.get(form.value("training_issue"))
    body = form.validate(
        FeedbackResponse,
        {"remedial_action": form.value("remedial_action"), "training_issue": training},
    )
    if training is None:  # "missing" reads better than the model's "not a yes or no"
        form.errors.pop("training_issue", None)
        form.error("training_issue", "choose_one")
    if body is None or form.errors:
        await feedback_service.get_feedback(session, user.principal, feedback_id)  # 404 first
        return await _shown_on(request, session, path, form)
    try:
        await lifecycle.respond(
            session,
            user.principal,
            ctx,
            feedback_id,
            remedial_action=body.remedial_action,
            training_issue=body.training_issue,
        )
    except DomainError as exc:
        if exc.status == 404:
            raise
        return await _shown_on(request, session, path, form.refused(exc))
    await session.commit()
    return redirect(request, path)
