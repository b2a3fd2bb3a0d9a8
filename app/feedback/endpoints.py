import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.core.auth import AnyKey, TeamLeader
from app.core.deps import Session
from app.core.months import Month, MonthText
from app.core.pagination import Cursor, PageSize
from app.feedback import service
from app.feedback.schemas import FeedbackCreate, FeedbackPage, FeedbackRead
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
    return FeedbackRead.model_validate(await service.get_feedback(session, principal, feedback_id))


@router.get("", operation_id="list_feedback")
async def list_feedback(
    principal: TeamLeader,
    session: Session,
    month: Annotated[MonthText | None, Query(description="YYYY-MM, in UK time")] = None,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> FeedbackPage:
    rows, next_cursor = await service.list_feedback(
        session, principal, month=Month.parse(month) if month else None, limit=limit, cursor=cursor
    )
    return FeedbackPage(
        items=[FeedbackRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )
