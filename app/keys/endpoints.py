"""Admins manage their own body's keys. The first admin key comes from `handoff keys create`."""

import uuid

from fastapi import APIRouter, status

from app.core.auth import Admin
from app.core.deps import ClockDep, Session
from app.core.pagination import Cursor, PageSize
from app.idempotency.api_route import IdempotentAPIRoute
from app.keys import service
from app.keys.schemas import KeyCreate, KeyCreated, KeyPage, KeyRead
from app.protocol.deps import Routes

router = APIRouter(prefix="/v1/keys", tags=["keys"], route_class=IdempotentAPIRoute)


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="create_key")
async def create_key(
    body: KeyCreate, principal: Admin, session: Session, clock: ClockDep, routes: Routes
) -> KeyCreated:
    key, secret = await service.create_key(
        session,
        routes,
        org=principal.body,
        role=body.role,
        name=body.name,
        now=clock.now(),
        actor=principal,
    )
    await session.commit()
    return KeyCreated.model_validate({**KeyRead.model_validate(key).model_dump(), "secret": secret})


@router.get("", operation_id="list_keys")
async def list_keys(
    principal: Admin, session: Session, limit: PageSize = 50, cursor: Cursor = None
) -> KeyPage:
    """The calling body's keys, newest first."""
    keys, next_cursor = await service.page_of_keys(
        session, principal.body, limit=limit, cursor=cursor
    )
    return KeyPage(items=[KeyRead.model_validate(k) for k in keys], next_cursor=next_cursor)


@router.post("/{key_id}/revoke", operation_id="revoke_key")
async def revoke_key(
    key_id: uuid.UUID, principal: Admin, session: Session, clock: ClockDep
) -> KeyRead:
    key = await service.revoke_key(
        session, key_id, now=clock.now(), actor=principal, org=principal.body
    )
    await session.commit()
    return KeyRead.model_validate(key)
