import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.access import get_visible, visible_to
from app.core.auth import Principal
from app.core.months import Month
from app.core.pagination import newest_first, split_page
from app.core.rules import not_in_future
from app.feedback.emails import KIND as FEEDBACK_EMAIL
from app.feedback.lifecycle import ABOUT, NAME, Direction, FeedbackState
from app.feedback.models import Feedback
from app.feedback.schemas import FeedbackCreate
from app.outbox import service as outbox
from app.protocol.context import RequestContext
from app.protocol.exceptions import no_route


def submit_feedback(
    session: AsyncSession,
    principal: Principal,
    ctx: RequestContext,
    body: FeedbackCreate,
) -> Feedback:
    about = ctx.routes.body(body.about_org)
    if about is None or ctx.routes.route(principal.body, body.about_org) is None:
        raise no_route(principal.body, body.about_org)
    feedback = Feedback(
        id=uuid.uuid4(),
        from_org=principal.body,
        about_org=about.id,
        case_references=list(body.case_references),
        reason_for_contact=body.reason_for_contact,
        names_and_times=body.names_and_times,
        correct_advice=body.correct_advice,
        suggested_action=body.suggested_action,
        occurred_at=(
            not_in_future(body.occurred_at, ctx.now, ctx.skew_seconds, "occurred_at")
            if body.occurred_at
            else None
        ),
        mailbox=str(about.feedback_mailbox),
        submitted_at=ctx.now,
        state=FeedbackState.submitted.value,
        version=1,
        created_by_key_id=principal.key_id,
    )
    session.add(feedback)
    audit.created(session, principal, audit.RecordType.feedback, feedback.id, ctx.now)
    outbox.enqueue(
        session,
        kind=FEEDBACK_EMAIL,
        subject_id=feedback.id,
        to_address=feedback.mailbox,
        now=ctx.now,
    )
    return feedback


async def get_feedback(
    session: AsyncSession, principal: Principal, feedback_id: uuid.UUID
) -> Feedback:
    """The feedback as the body that sent it or the body it is about reads it."""
    return await get_visible(
        session,
        Feedback,
        feedback_id,
        principal.body,
        name=NAME,
        also=ABOUT,
    )


async def list_feedback(
    session: AsyncSession,
    principal: Principal,
    *,
    month: Month | None,
    limit: int,
    cursor: str | None,
    direction: Direction = Direction.outgoing,
    state: FeedbackState | None = None,
) -> tuple[list[Feedback], str | None]:
    """The feedback the body sent (outgoing) or that is about it (incoming), newest first."""
    if direction is Direction.incoming:
        query = select(Feedback).where(visible_to(Feedback, principal.body, owner="about_org"))
    else:
        query = select(Feedback).where(visible_to(Feedback, principal.body))
    if state is not None:
        query = query.where(Feedback.state == state.value)
    if month is not None:
        start, end = month.utc_range()
        query = query.where(Feedback.submitted_at >= start, Feedback.submitted_at < end)
    query = newest_first(query, Feedback.submitted_at, Feedback.id, cursor, limit)
    rows = list((await session.scalars(query)).all())
    return split_page(rows, limit, lambda feedback: (feedback.submitted_at, feedback.id))
