import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.core.auth import AnyKey, TeamLeader
from app.core.deps import Session
from app.core.months import Month, MonthText
from app.core.pagination import Cursor, PageSize
from app.idempotency.api_route import IdempotentAPIRoute
from app.protocol.deps import Context
from app.signposts import service
from app.signposts.schemas import SignpostCreate, SignpostPage, SignpostRead

router = APIRouter(prefix="/v1/signposts", tags=["signposts"], route_class=IdempotentAPIRoute)


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="record_signpost")
async def record_signpost(
    body: SignpostCreate,
    principal: AnyKey,
    session: Session,
    ctx: Context,
) -> SignpostRead:
    signpost = service.record_signpost(session, principal, ctx, body)
    await session.commit()
    return SignpostRead.model_validate(signpost)


@router.get("", operation_id="list_signposts")
async def list_signposts(
    principal: TeamLeader,
    session: Session,
    month: Annotated[MonthText | None, Query(description="YYYY-MM, in UK time")] = None,
    to_org: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    contact_reason: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    no_contact_reason: Annotated[
        bool,
        Query(
            description="Only those recorded with no contact reason (the report's \"No "
            'reason given"); not with `contact_reason`.'
        ),
    ] = False,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> SignpostPage:
    """Your body's signposts, newest first (team leaders and up): the records behind the
    report's signpost figures."""
    rows, next_cursor = await service.list_signposts(
        session,
        principal,
        month=Month.parse(month) if month else None,
        to_org=to_org,
        contact_reason=contact_reason,
        no_contact_reason=no_contact_reason,
        limit=limit,
        cursor=cursor,
    )
    return SignpostPage(
        items=[SignpostRead.model_validate(s) for s in rows], next_cursor=next_cursor
    )


@router.get("/{signpost_id}", operation_id="get_signpost")
async def get_signpost(signpost_id: uuid.UUID, principal: AnyKey, session: Session) -> SignpostRead:
    return SignpostRead.model_validate(await service.get_signpost(session, principal, signpost_id))
