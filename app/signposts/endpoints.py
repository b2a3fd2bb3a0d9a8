import uuid

from fastapi import APIRouter, status

from app.core.auth import AnyKey
from app.core.deps import Session
from app.idempotency.api_route import IdempotentAPIRoute
from app.protocol.deps import Context
from app.signposts import service
from app.signposts.schemas import SignpostCreate, SignpostRead

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


@router.get("/{signpost_id}", operation_id="get_signpost")
async def get_signpost(signpost_id: uuid.UUID, principal: AnyKey, session: Session) -> SignpostRead:
    return SignpostRead.model_validate(await service.get_signpost(session, principal, signpost_id))
