import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from app.core.auth import AnyKey, Role
from app.core.deps import Session
from app.core.errors import Forbidden
from app.core.months import Month, MonthText
from app.core.pagination import Cursor, PageSize
from app.feedback import lifecycle, service
from app.feedback.lifecycle import Direction, FeedbackState
from app.feedback.schemas import FeedbackCreate, FeedbackPage, FeedbackRead, FeedbackResponse
from app.idempotency.api_route import IdempotentAPIRoute
from app.protocol.deps import Context

router = APIRouter(prefix="/v1/feedback", tags=["feedback"], route_class=IdempotentAPIRoute)


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="submit_feedback")
async def submit_feedback(
    body: FeedbackCreate,
    principal: AnyKey,
    session: Session,
    ctx: Context,
) -> FeedbackRead:
    feedback = service.submit_feedback(session, principal, ctx, body)
    await session.commit()
    return FeedbackRead.model_validate(feedback)


@router.get("/{feedback_id}", operation_id="get_feedback")
async def get_feedback(feedback_id: uuid.UUID, principal: AnyKey, session: Session) -> FeedbackRead:
    """The feedback, with its state and response, for the body that sent it and the body it
    is about."""
    return FeedbackRead.model_validate(await service.get_feedback(session, principal, feedback_id))


_LIST_403 = {403: {"description": "`insufficient_role`: the outgoing list needs a team leader."}}


@router.get("", operation_id="list_feedback", responses=_LIST_403)  # type: ignore[arg-type]
async def list_feedback(
    principal: AnyKey,
    session: Session,
    direction: Annotated[
        Direction,
        Query(
            description="`outgoing`: the feedback your body sent (team leaders and up); "
            "`incoming`: the feedback about your body (advisers too). Newest first."
        ),
    ] = Direction.outgoing,
    month: Annotated[MonthText | None, Query(description="YYYY-MM, in UK time")] = None,
    state: FeedbackState | None = None,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> FeedbackPage:
    if direction is Direction.outgoing and not principal.can(Role.team_leader):
        raise Forbidden("insufficient_role", f"This needs a key with the {Role.team_leader} role.")
    rows, next_cursor = await service.list_feedback(
        session,
        principal,
        month=Month.parse(month) if month else None,
        limit=limit,
        cursor=cursor,
        direction=direction,
        state=state,
    )
    return FeedbackPage(
        items=[FeedbackRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


# The answers of a change beyond those core.openapi derives.
_CHANGE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"description": "`feedback_receiving_body_only`: the sender cannot answer its own."},
}


@router.post(
    "/{feedback_id}/acknowledge", operation_id="acknowledge_feedback", responses=_CHANGE_PROBLEMS
)
async def acknowledge_feedback(
    feedback_id: uuid.UUID, principal: AnyKey, session: Session, ctx: Context
) -> FeedbackRead:
    """The body the feedback is about says it has seen it (409
    `feedback_already_acknowledged` the second time, `feedback_closed` once responded)."""
    feedback = await lifecycle.acknowledge(session, principal, ctx, feedback_id)
    read = FeedbackRead.model_validate(feedback)
    await session.commit()
    return read


@router.post(
    "/{feedback_id}/response", operation_id="respond_to_feedback", responses=_CHANGE_PROBLEMS
)
async def respond_to_feedback(
    feedback_id: uuid.UUID,
    body: FeedbackResponse,
    principal: AnyKey,
    session: Session,
    ctx: Context,
) -> FeedbackRead:
    """The body the feedback is about records its remedial action and whether it was a
    training issue: the feedback closes (409 `feedback_closed` after)."""
    feedback = await lifecycle.respond(
        session,
        principal,
        ctx,
        feedback_id,
        remedial_action=body.remedial_action,
        training_issue=body.training_issue,
    )
    read = FeedbackRead.model_validate(feedback)
    await session.commit()
    return read
