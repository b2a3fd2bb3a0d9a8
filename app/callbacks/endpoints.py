import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from app.callbacks import service
from app.callbacks.schemas import CallbackPage, CallbackRead, DeliveryStatus
from app.core.auth import AnyKey, TeamLeader
from app.core.deps import Session
from app.core.months import Month, MonthText
from app.core.pagination import Cursor, PageSize
from app.idempotency.api_route import IdempotentAPIRoute

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"], route_class=IdempotentAPIRoute)


@router.get("/{callback_id}", operation_id="get_callback")
async def get_callback(callback_id: uuid.UUID, principal: AnyKey, session: Session) -> CallbackRead:
    return CallbackRead.build(*await service.get_callback(session, principal, callback_id))


@router.get("", operation_id="list_callbacks")
async def list_callbacks(
    principal: TeamLeader,
    session: Session,
    month: Annotated[MonthText | None, Query(description="YYYY-MM, in UK time")] = None,
    status: DeliveryStatus | None = None,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> CallbackPage:
    rows, next_cursor = await service.list_callbacks(
        session,
        principal,
        month=Month.parse(month) if month else None,
        status=status.value if status else None,
        limit=limit,
        cursor=cursor,
    )
    return CallbackPage(items=[CallbackRead.build(*r) for r in rows], next_cursor=next_cursor)
