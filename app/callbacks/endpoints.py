import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from app.callbacks import lifecycle
from app.callbacks.lifecycle import CallbackState, Direction
from app.callbacks.lifecycle_schemas import AttemptCreate, CallbackReturn
from app.callbacks.schemas import CallbackPage, CallbackRead, DeliveryStatus
from app.core.auth import AnyKey, Role
from app.core.deps import ClockDep, Session, SettingsDep
from app.core.errors import Forbidden
from app.core.months import Month, MonthText
from app.core.pagination import Cursor, PageSize
from app.idempotency.api_route import IdempotentAPIRoute
from app.protocol.context import RequestContext
from app.protocol.deps import Context

router = APIRouter(prefix="/v1/callbacks", tags=["callbacks"], route_class=IdempotentAPIRoute)


@router.get("/{callback_id}", operation_id="get_callback")
async def get_callback(
    callback_id: uuid.UUID, principal: AnyKey, session: Session, clock: ClockDep, response: Response
) -> CallbackRead:
    view = await lifecycle.get_callback(session, principal, callback_id, clock.now())
    response.headers["ETag"] = lifecycle.etag(view.callback)
    return CallbackRead.build(view)


_LIST_403 = {
    403: {
        "description": "`insufficient_role`: the outgoing list and the stale one need a team "
        "leader."
    }
}


@router.get("", operation_id="list_callbacks", responses=_LIST_403)  # type: ignore[arg-type]
async def list_callbacks(
    principal: AnyKey,
    session: Session,
    clock: ClockDep,
    settings: SettingsDep,
    direction: Annotated[
        Direction,
        Query(
            description="`outgoing`: the requests your body made (team leaders and up), "
            "newest first; `incoming`: those addressed to your body, most urgent first."
        ),
    ] = Direction.outgoing,
    month: Annotated[MonthText | None, Query(description="YYYY-MM, in UK time")] = None,
    state: CallbackState | None = None,
    overdue: Annotated[
        bool | None, Query(description="Only those overdue now (true) or not (false).")
    ] = None,
    status: Annotated[DeliveryStatus | None, Query(description="The email's delivery.")] = None,
    stale: Annotated[
        bool,
        Query(
            description="Only the open requests made more than HANDOFF_OPEN_CALLBACK_MAX_DAYS "
            "(default 90) days ago, whose caller's details retention keeps until they are "
            "closed (team leaders and up)."
        ),
    ] = False,
    limit: PageSize = 50,
    cursor: Cursor = None,
) -> CallbackPage:
    if (direction is Direction.outgoing or stale) and not principal.can(Role.team_leader):
        raise Forbidden("insufficient_role", f"This needs a key with the {Role.team_leader} role.")
    now = clock.now()
    views, next_cursor = await lifecycle.list_callbacks(
        session,
        principal,
        direction=direction,
        now=now,
        month=Month.parse(month) if month else None,
        state=state,
        overdue=overdue,
        delivery_status=status.value if status else None,
        stale_before=now - timedelta(days=settings.open_callback_max_days) if stale else None,
        limit=limit,
        cursor=cursor,
    )
    return CallbackPage(items=[CallbackRead.build(v) for v in views], next_cursor=next_cursor)


# --- the life of a request: acknowledged, attempted and closed (app/callbacks/lifecycle.py) ---


IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=200,
        description="The ETag of the request as last read: the change is refused with 412 "
        "`precondition_failed` if the request has changed since.",
    ),
]

# The answers of a state change beyond those core.openapi derives.
_CHANGE_PROBLEMS: dict[int | str, dict[str, Any]] = {
    403: {"description": "The other body's part of the request's life."},
    412: {"description": "`precondition_failed`: `If-Match` names an older version."},
}


@router.post(
    "/{callback_id}/acknowledge", operation_id="acknowledge_callback", responses=_CHANGE_PROBLEMS
)
async def acknowledge_callback(
    callback_id: uuid.UUID,
    principal: AnyKey,
    session: Session,
    ctx: Context,
    response: Response,
    if_match: IfMatch = None,
) -> CallbackRead:
    """The receiving body takes the request on (409 `callback_already_acknowledged`, with
    who and when, if another adviser did first)."""
    callback = await lifecycle.acknowledge(session, principal, ctx, callback_id, if_match=if_match)
    response.headers["ETag"] = lifecycle.etag(callback)
    return await _read_and_commit(session, principal, ctx, callback_id)


@router.post(
    "/{callback_id}/attempts", operation_id="record_callback_attempt", responses=_CHANGE_PROBLEMS
)
async def record_callback_attempt(
    callback_id: uuid.UUID,
    body: AttemptCreate,
    principal: AnyKey,
    session: Session,
    ctx: Context,
    response: Response,
    if_match: IfMatch = None,
) -> CallbackRead:
    """The receiving body records a try to call the caller back."""
    callback, _ = await lifecycle.record_attempt(
        session,
        principal,
        ctx,
        callback_id,
        result=body.result,
        attempted_at=body.attempted_at,
        if_match=if_match,
    )
    response.headers["ETag"] = lifecycle.etag(callback)
    return await _read_and_commit(session, principal, ctx, callback_id)


@router.post("/{callback_id}/return", operation_id="return_callback", responses=_CHANGE_PROBLEMS)
async def return_callback(
    callback_id: uuid.UUID,
    body: CallbackReturn,
    principal: AnyKey,
    session: Session,
    ctx: Context,
    response: Response,
    if_match: IfMatch = None,
) -> CallbackRead:
    """The receiving body says the request is not for them, with a reason: it closes."""
    callback = await lifecycle.return_callback(
        session, principal, ctx, callback_id, reason=body.reason, if_match=if_match
    )
    response.headers["ETag"] = lifecycle.etag(callback)
    return await _read_and_commit(session, principal, ctx, callback_id)


@router.post(
    "/{callback_id}/withdraw", operation_id="withdraw_callback", responses=_CHANGE_PROBLEMS
)
async def withdraw_callback(
    callback_id: uuid.UUID,
    principal: AnyKey,
    session: Session,
    ctx: Context,
    response: Response,
    if_match: IfMatch = None,
) -> CallbackRead:
    """The sending body takes back an open request: it closes as withdrawn."""
    callback = await lifecycle.withdraw(session, principal, ctx, callback_id, if_match=if_match)
    response.headers["ETag"] = lifecycle.etag(callback)
    return await _read_and_commit(session, principal, ctx, callback_id)


async def _read_and_commit(
    session: Session, principal: AnyKey, ctx: RequestContext, callback_id: uuid.UUID
) -> CallbackRead:
    view = await lifecycle.get_callback(session, principal, callback_id, ctx.now)
    await session.commit()
    return CallbackRead.build(view)
