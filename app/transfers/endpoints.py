import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from app.core.auth import AnyKey, TeamLeader
from app.core.deps import Session
from app.core.hot_path import hot_path
from app.core.months import Month, MonthText
from app.core.pagination import Cursor, PageSize
from app.core.validation import enum_schema, one_of
from app.idempotency.api_route import IdempotentAPIRoute
from app.protocol.context import RequestContext
from app.protocol.deps import Context
from app.transfers import service
from app.transfers.models import Transfer
from app.transfers.schemas import (
    TransferConnect,
    TransferCreate,
    TransferDeclined,
    TransferFail,
    TransferHungUp,
    TransferOutcome,
    TransferPage,
    TransferRead,
    TransferStatus,
)
from app.transfers.views import transfer_read, view_transfer

router = APIRouter(prefix="/v1/transfers", tags=["transfers"], route_class=IdempotentAPIRoute)


def _read(transfer: Transfer, ctx: RequestContext, callback_id: uuid.UUID | None) -> TransferRead:
    return transfer_read(view_transfer(transfer, ctx.routes, ctx.now), callback_id)


@router.post("", status_code=status.HTTP_201_CREATED, operation_id="start_transfer")
@hot_path
async def start_transfer(
    body: TransferCreate, principal: AnyKey, session: Session, ctx: Context
) -> TransferRead:
    transfer, callback = await service.start_transfer(session, principal, ctx, body)
    await session.commit()
    return _read(transfer, ctx, callback.id if callback else None)


StatusFilter = Annotated[
    str | None,
    Query(
        max_length=32,
        description="Only transfers in this status.",
        json_schema_extra=enum_schema(TransferStatus),
    ),
    one_of(TransferStatus, "unknown_status"),
]
OutcomeFilter = Annotated[
    str | None,
    Query(
        max_length=32,
        description="Only transfers that ended so, as the report counts them.",
        json_schema_extra=enum_schema(TransferOutcome),
    ),
    one_of(TransferOutcome, "unknown_outcome"),
]


@router.get("", operation_id="list_transfers")
async def list_transfers(
    principal: TeamLeader,
    session: Session,
    ctx: Context,
    month: Annotated[
        MonthText | None, Query(description="YYYY-MM, in UK time, of the outcome")
    ] = None,
    status: StatusFilter = None,
    outcome: OutcomeFilter = None,
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
) -> TransferPage:
    """Your body's transfers, newest first (team leaders and up): the records behind a figure
    of the report. No caller details."""
    rows, next_cursor = await service.list_transfers(
        session,
        principal,
        month=Month.parse(month) if month else None,
        status=TransferStatus(status) if status else None,
        outcome=TransferOutcome(outcome) if outcome else None,
        to_org=to_org,
        contact_reason=contact_reason,
        no_contact_reason=no_contact_reason,
        limit=limit,
        cursor=cursor,
    )
    return TransferPage(
        items=[_read(transfer, ctx, callback_id) for transfer, callback_id in rows],
        next_cursor=next_cursor,
    )


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
    service.connect(session, transfer, principal, ctx, body)
    await session.commit()
    return _read(transfer, ctx, None)


@router.post("/{transfer_id}/declined", operation_id="record_transfer_declined")
async def record_declined(
    transfer_id: uuid.UUID,
    body: TransferDeclined,
    principal: AnyKey,
    session: Session,
    ctx: Context,
) -> TransferRead:
    """The caller did not want to be transferred (no permission to share is needed)."""
    transfer = await service.get_transfer(session, principal, transfer_id, for_update=True)
    service.end(session, transfer, principal, ctx, body)
    await session.commit()
    return _read(transfer, ctx, None)


@router.post("/{transfer_id}/hung-up", operation_id="record_transfer_hung_up")
async def record_hung_up(
    transfer_id: uuid.UUID,
    body: TransferHungUp,
    principal: AnyKey,
    session: Session,
    ctx: Context,
) -> TransferRead:
    """The caller ended the call while waiting (no permission to share is needed)."""
    transfer = await service.get_transfer(session, principal, transfer_id, for_update=True)
    service.end(session, transfer, principal, ctx, body)
    await session.commit()
    return _read(transfer, ctx, None)


@router.post("/{transfer_id}/failed", operation_id="record_transfer_failed")
@hot_path
async def record_failed(
    transfer_id: uuid.UUID, body: TransferFail, principal: AnyKey, session: Session, ctx: Context
) -> TransferRead:
    transfer = await service.get_transfer(session, principal, transfer_id, for_update=True)
    callback = await service.fail(session, transfer, principal, ctx, body)
    await session.commit()
    return _read(transfer, ctx, callback.id)
