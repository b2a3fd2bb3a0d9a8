import uuid
from datetime import datetime

from fastapi import APIRouter, status

from app.core.auth import AnyKey
from app.core.deps import ClockDep, Routes, Session
from app.idempotency.routes import IdempotentRoute
from app.protocol.routes import RouteTable
from app.transfers import service
from app.transfers.dependencies import Context
from app.transfers.models import Transfer
from app.transfers.schemas import (
    Dial,
    TransferConnect,
    TransferCreate,
    TransferFail,
    TransferRead,
    TransferStatus,
)

router = APIRouter(prefix="/v1/transfers", tags=["transfers"], route_class=IdempotentRoute)


def _next_step(transfer: Transfer, overdue: bool) -> str:
    if transfer.status == TransferStatus.connected:
        return "Done: the warm transfer is recorded."
    if transfer.status == TransferStatus.failed:
        return "Done: a call back request has been made."
    if overdue:
        return "The wait has passed the threshold: request a call back."
    return "Wait for an answer; record 'connected', or 'failed' if lines are busy."


def transfer_read(
    transfer: Transfer, routes: RouteTable, now: datetime, callback_id: uuid.UUID | None
) -> TransferRead:
    route = routes.route(transfer.from_org, transfer.to_org)
    ivr = route.ivr_option(transfer.topic) if route else None
    deadline = service.callback_required_after(transfer)
    overdue = service.must_request_callback(transfer, now)
    return TransferRead(
        id=transfer.id,
        from_org=transfer.from_org,
        to_org=transfer.to_org,
        status=TransferStatus(transfer.status),
        topic=transfer.topic,
        dial=Dial(
            number=route.dial_number if route else "",
            ivr_option=transfer.ivr_option,
            ivr_label=ivr.label if ivr else None,
        ),
        sender_reference=transfer.sender_reference,
        wait_started_at=transfer.wait_started_at,
        wait_threshold_seconds=transfer.wait_threshold_seconds,
        callback_required_after=deadline,
        must_request_callback=overdue,
        next_step=_next_step(transfer, overdue),
        permission_to_share_at=transfer.permission_to_share_at,
        connected_at=transfer.connected_at,
        failed_at=transfer.failed_at,
        failure_reason=transfer.failure_reason,  # type: ignore[arg-type]
        callback_request_id=callback_id,
        created_at=transfer.created_at,
    )


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="start_transfer")
async def start_transfer(
    body: TransferCreate, principal: AnyKey, session: Session, ctx: Context
) -> TransferRead:
    transfer, callback = await service.start_transfer(session, principal, ctx, body)
    await session.commit()
    return transfer_read(transfer, ctx.routes, ctx.now, callback.id if callback else None)


@router.get("/{transfer_id}", operation_id="get_transfer")
async def get_transfer(
    transfer_id: uuid.UUID, principal: AnyKey, session: Session, routes: Routes, clock: ClockDep
) -> TransferRead:
    transfer = await service.get_transfer(session, principal, transfer_id)
    callback_id = await service.callback_request_id_for(session, transfer.id)
    return transfer_read(transfer, routes, clock.now(), callback_id)


@router.post("/{transfer_id}/connected", operation_id="record_transfer_connected")
async def record_connected(
    transfer_id: uuid.UUID, body: TransferConnect, principal: AnyKey, session: Session, ctx: Context
) -> TransferRead:
    transfer = await service.get_transfer(session, principal, transfer_id, for_update=True)
    service.connect(transfer, ctx, body)
    await session.commit()
    return transfer_read(transfer, ctx.routes, ctx.now, None)


@router.post("/{transfer_id}/failed", operation_id="record_transfer_failed")
async def record_failed(
    transfer_id: uuid.UUID, body: TransferFail, principal: AnyKey, session: Session, ctx: Context
) -> TransferRead:
    transfer = await service.get_transfer(session, principal, transfer_id, for_update=True)
    callback = await service.fail(session, transfer, principal, ctx, body)
    await session.commit()
    return transfer_read(transfer, ctx.routes, ctx.now, callback.id)
