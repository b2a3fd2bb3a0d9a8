import uuid

from fastapi import APIRouter, status

from app.core.auth import AnyKey
from app.core.deps import Session
from app.idempotency.api_route import IdempotentAPIRoute
from app.protocol.context import RequestContext
from app.protocol.deps import Context
from app.transfers import service
from app.transfers.models import Transfer
from app.transfers.schemas import TransferConnect, TransferCreate, TransferFail, TransferRead
from app.transfers.views import transfer_read, view_transfer

router = APIRouter(prefix="/v1/transfers", tags=["transfers"], route_class=IdempotentAPIRoute)


def _read(transfer: Transfer, ctx: RequestContext, callback_id: uuid.UUID | None) -> TransferRead:
    return transfer_read(view_transfer(transfer, ctx.routes, ctx.now), callback_id)


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="start_transfer")
async def start_transfer(
    body: TransferCreate, principal: AnyKey, session: Session, ctx: Context
) -> TransferRead:
    transfer, callback = await service.start_transfer(session, principal, ctx, body)
    await session.commit()
    return _read(transfer, ctx, callback.id if callback else None)


@router.get("/{transfer_id}", operation_id="get_transfer")
async def get_transfer(
    transfer_id: uuid.UUID, principal: AnyKey, session: Session, ctx: Context
) -> TransferRead:
    transfer = await service.get_transfer(session, principal, transfer_id)
    callback_id = await service.callback_request_id_for(session, transfer.id)
    return _read(transfer, ctx, callback_id)


@router.post("/{transfer_id}/connected", operation_id="record_transfer_connected")
async def record_connected(
    transfer_id: uuid.UUID, body: TransferConnect, principal: AnyKey, session: Session, ctx: Context
) -> TransferRead:
    transfer = await service.get_transfer(session, principal, transfer_id, for_update=True)
    service.connect(transfer, ctx, body)
    await session.commit()
    return _read(transfer, ctx, None)


@router.post("/{transfer_id}/failed", operation_id="record_transfer_failed")
async def record_failed(
    transfer_id: uuid.UUID, body: TransferFail, principal: AnyKey, session: Session, ctx: Context
) -> TransferRead:
    transfer = await service.get_transfer(session, principal, transfer_id, for_update=True)
    callback = await service.fail(session, transfer, principal, ctx, body)
    await session.commit()
    return _read(transfer, ctx, callback.id)
