"""The rules of a warm transfer: who may dial whom, how long to wait, when to call back."""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.callbacks import service as callbacks
from app.callbacks.models import CallbackRequest
from app.core.access import get_visible, visible_to
from app.core.auth import Principal
from app.core.errors import DomainError, Unprocessable
from app.core.months import LONDON, Month
from app.core.pagination import newest_first, split_page
from app.core.rules import not_before, not_in_future
from app.protocol.context import RequestContext
from app.protocol.exceptions import contact_reason_problem, no_route
from app.protocol.routes import ReferenceRule, Route
from app.transfers import exceptions, new_records
from app.transfers.models import Transfer
from app.transfers.schemas import (
    Caller,
    ConnectedOutcome,
    DeclinedOutcome,
    FailedOutcome,
    FailureReason,
    HungUpOutcome,
    TransferConnect,
    TransferCreate,
    TransferDeclined,
    TransferFail,
    TransferHungUp,
    TransferOutcome,
    TransferStatus,
)


def _route(ctx: RequestContext, from_org: str, to_org: str) -> Route:
    route = ctx.routes.route(from_org, to_org)
    if route is None:
        raise no_route(from_org, to_org)
    return route


def _permission(
    ctx: RequestContext, value: datetime | None, *, required: bool, why: str
) -> datetime | None:
    if value is None:
        if required:
            raise Unprocessable(
                "permission_to_share_required",
                f"Record when the caller gave permission to share their information ({why}).",
                extra={"field": "permission_to_share_at"},
            )
        return None
    return not_in_future(
        value, ctx.now, ctx.skew_seconds, "permission_to_share_at", "permission_to_share_in_future"
    )


def _topic_problem(route: Route, topic: str | None) -> DomainError | None:
    if route.ivr_options:
        if topic is None:
            return Unprocessable(
                "topic_required",
                f"Say which topic the call is about: {', '.join(route.ivr_options)}.",
                extra={"field": "topic"},
            )
        if route.ivr_option(topic) is None:
            return Unprocessable(
                "unknown_topic",
                f"Topic must be one of: {', '.join(route.ivr_options)}.",
                extra={"field": "topic"},
            )
    elif topic is not None:
        return Unprocessable(
            "topic_not_applicable",
            f"The route to '{route.to_org}' has no IVR options; leave topic out.",
            extra={"field": "topic"},
        )
    return None


def _reference_problem(route: Route, body: TransferCreate) -> DomainError | None:
    if route.sender_reference is ReferenceRule.required and body.sender_reference is None:
        return Unprocessable(
            "sender_reference_required",
            f"Transfers to '{route.to_org}' need your case reference.",
            extra={"field": "sender_reference"},
        )
    return None


def _problems(*checks: Callable[[], object]) -> list[DomainError]:
    found = []
    for check in checks:
        try:
            problem = check()
        except DomainError as exc:
            problem = exc
        if isinstance(problem, DomainError):
            found.append(problem)
    return found


def start_problems(
    principal: Principal, ctx: RequestContext, body: TransferCreate
) -> list[DomainError]:
    """Every rule `start_transfer` would refuse `body` for, not only the first: for a form
    that shows all its errors at once. `body` may be a draft (`model_construct`) whose
    fields the request model refused; those fields are left to the model's errors."""
    route = ctx.routes.route(principal.body, body.to_org)
    if route is None:
        return [no_route(principal.body, body.to_org)]
    return _problems(
        lambda: _topic_problem(route, body.topic),
        lambda: _reference_problem(route, body),
        lambda: contact_reason_problem(route, body.contact_reason),
        lambda: _permission(
            ctx,
            body.permission_to_share_at,
            required=route.permission_required(body.sender_reference),
            why="the protocol records it for this transfer",
        ),
    )


async def start_transfer(
    session: AsyncSession, principal: Principal, ctx: RequestContext, body: TransferCreate
) -> tuple[Transfer, CallbackRequest | None]:
    route = _route(ctx, principal.body, body.to_org)
    for problem in (
        _topic_problem(route, body.topic),
        _reference_problem(route, body),
        contact_reason_problem(route, body.contact_reason),
    ):
        if problem is not None:
            raise problem
    ivr = route.ivr_option(body.topic)

    wait_started_at = not_in_future(
        body.wait_started_at or ctx.now, ctx.now, ctx.skew_seconds, "wait_started_at"
    )
    permission = _permission(
        ctx,
        body.permission_to_share_at,
        required=route.permission_required(body.sender_reference),
        why="the protocol records it for this transfer",
    )

    transfer = Transfer(
        id=uuid.uuid4(),
        from_org=principal.body,
        to_org=route.to_org,
        topic=body.topic,
        ivr_option=ivr.option if ivr else None,
        sender_reference=body.sender_reference,
        wait_started_at=wait_started_at,
        wait_threshold_seconds=route.wait_threshold_seconds,
        permission_to_share_at=permission,
        status=TransferStatus.waiting.value,
        answered_after_threshold=False,
        contact_reason=body.contact_reason,
        created_by_key_id=principal.key_id,
        created_at=ctx.now,
    )

    created = audit.created_event(principal, audit.RecordType.transfer, transfer.id, ctx.now)
    if isinstance(body.outcome, FailedOutcome):
        # The integration's hot path: the records are new, so they are written with plain
        # INSERTs (one statement on PostgreSQL) rather than through the unit of work.
        route = _record_failure(transfer, ctx, body.outcome)
        callback, details, message, requested = callbacks.new_callback_request(
            _failure(transfer, body.outcome.caller),
            route=route,
            principal=principal,
            now=ctx.now,
            due=ctx.routes.callback_due(route, ctx.now),
        )
        await new_records.insert(session, transfer, callback, details, message, created, requested)
        return transfer, callback

    session.add_all((transfer, created))
    if isinstance(body.outcome, ConnectedOutcome):
        connect(session, transfer, principal, ctx, body.outcome)
    elif isinstance(body.outcome, DeclinedOutcome | HungUpOutcome):
        end(session, transfer, principal, ctx, body.outcome)
    return transfer, None


def _elapsed(transfer: Transfer, moment: datetime) -> float:
    return (moment - transfer.wait_started_at).total_seconds()


def callback_required_after(transfer: Transfer) -> datetime:
    return transfer.wait_started_at + timedelta(seconds=transfer.wait_threshold_seconds)


def must_request_callback(transfer: Transfer, now: datetime) -> bool:
    """Still waiting, and longer than the threshold: the live transfer must give way to a call
    back. Exactly the threshold is not yet past it (see `connect`)."""
    return (
        transfer.status == TransferStatus.waiting
        and _elapsed(transfer, now) > transfer.wait_threshold_seconds
    )


def _check_open(transfer: Transfer, now: datetime) -> None:
    """An outcome may be recorded while the transfer waits, and over the worker's
    `no_outcome_recorded` until the end of the UK day the wait started on."""
    if transfer.status == TransferStatus.waiting:
        return
    if transfer.status == TransferStatus.no_outcome_recorded:
        if now.astimezone(LONDON).date() == transfer.wait_started_at.astimezone(LONDON).date():
            return
        raise exceptions.outcome_too_late()
    raise exceptions.transfer_not_waiting(transfer.status)


def _record_outcome(
    session: AsyncSession,
    transfer: Transfer,
    principal: Principal,
    ctx: RequestContext,
    status: TransferStatus,
    at: datetime,
) -> None:
    """Mark the transfer ended; replacing the worker's `no_outcome_recorded` is audited."""
    if transfer.status == TransferStatus.no_outcome_recorded:
        audit.record(
            session,
            principal,
            audit.AuditAction.replace_outcome,
            audit.RecordType.transfer,
            transfer.id,
            org=transfer.from_org,
            now=ctx.now,
        )
    transfer.status = status.value
    transfer.outcome_at = at


def _outcome_time(
    transfer: Transfer, ctx: RequestContext, value: datetime | None, field: str
) -> datetime:
    at = not_in_future(value or ctx.now, ctx.now, ctx.skew_seconds, field)
    return not_before(at, transfer.wait_started_at, field, "wait_started_at")


def connect(
    session: AsyncSession,
    transfer: Transfer,
    principal: Principal,
    ctx: RequestContext,
    body: TransferConnect,
) -> Transfer:
    """The receiving body answered. After the threshold too: still a warm transfer, marked
    `answered_after_threshold` ("longer than 1 minute" / "exceeds 30 seconds": exactly the
    threshold is within it)."""
    _check_open(transfer, ctx.now)
    connected_at = _outcome_time(transfer, ctx, body.connected_at, "connected_at")
    if transfer.permission_to_share_at and transfer.permission_to_share_at > connected_at:
        raise Unprocessable(
            "permission_to_share_after_sharing",
            "Permission to share must be given before the call is connected.",
            extra={"field": "permission_to_share_at"},
        )
    _record_outcome(session, transfer, principal, ctx, TransferStatus.connected, connected_at)
    transfer.connected_at = connected_at
    transfer.answered_after_threshold = (
        _elapsed(transfer, connected_at) > transfer.wait_threshold_seconds
    )
    return transfer


def end(
    session: AsyncSession,
    transfer: Transfer,
    principal: Principal,
    ctx: RequestContext,
    body: TransferDeclined | TransferHungUp,
) -> Transfer:
    """The caller declined the transfer, or hung up while waiting: no permission is needed,
    nothing is shared."""
    _check_open(transfer, ctx.now)
    if isinstance(body, TransferDeclined):
        status, value, field = TransferStatus.declined, body.declined_at, "declined_at"
    else:
        status, value, field = TransferStatus.caller_hung_up, body.hung_up_at, "hung_up_at"
    at = _outcome_time(transfer, ctx, value, field)
    _record_outcome(session, transfer, principal, ctx, status, at)
    return transfer


async def fail(
    session: AsyncSession,
    transfer: Transfer,
    principal: Principal,
    ctx: RequestContext,
    body: TransferFail,
) -> CallbackRequest:
    replacing = transfer.status == TransferStatus.no_outcome_recorded
    route = _record_failure(transfer, ctx, body)
    if replacing:
        audit.record(
            session,
            principal,
            audit.AuditAction.replace_outcome,
            audit.RecordType.transfer,
            transfer.id,
            org=transfer.from_org,
            now=ctx.now,
        )
    return callbacks.create_callback_request(
        session,
        _failure(transfer, body.caller),
        route=route,
        principal=principal,
        now=ctx.now,
        due=ctx.routes.callback_due(route, ctx.now),
    )


def _failure(transfer: Transfer, caller: Caller) -> callbacks.Failure:
    """The failed transfer (marked by `_record_failure`) as a call back request's input."""
    assert transfer.sender_reference and transfer.permission_to_share_at and transfer.failure_reason
    return callbacks.Failure(
        transfer_id=transfer.id,
        from_org=transfer.from_org,
        to_org=transfer.to_org,
        reason=FailureReason(transfer.failure_reason),
        sender_reference=transfer.sender_reference,
        permission_to_share_at=transfer.permission_to_share_at,
        caller=caller,
    )


def _reference_for_callback(reference: str | None) -> DomainError | None:
    if reference is None:
        return Unprocessable(
            "sender_reference_required",
            "A call back request needs your case reference.",
            extra={"field": "sender_reference"},
        )
    return None


def _permission_for_callback(
    ctx: RequestContext, transfer: Transfer, body: TransferFail
) -> datetime | None:
    # The caller's contact details are shared, so permission is always needed here.
    return _permission(
        ctx,
        body.permission_to_share_at or transfer.permission_to_share_at,
        required=True,
        why="their contact details go to the other body",
    )


def failure_problems(
    transfer: Transfer, ctx: RequestContext, body: TransferFail
) -> list[DomainError]:
    """Every rule `fail` would refuse `body` for, not only the first (see `start_problems`)."""
    return _problems(
        lambda: _check_open(transfer, ctx.now),
        lambda: _threshold_problem(transfer, body.reason, ctx.now),
        lambda: _reference_for_callback(body.sender_reference or transfer.sender_reference),
        lambda: _permission_for_callback(ctx, transfer, body),
    )


def _threshold_problem(
    transfer: Transfer, reason: FailureReason | None, failed_at: datetime
) -> DomainError | None:
    elapsed = _elapsed(transfer, failed_at)
    if reason is FailureReason.wait_threshold_exceeded and (
        elapsed <= transfer.wait_threshold_seconds
    ):
        return exceptions.wait_threshold_not_reached(elapsed, transfer.wait_threshold_seconds)
    return None


def _record_failure(transfer: Transfer, ctx: RequestContext, body: TransferFail) -> Route:
    """Check that the transfer may fail now and mark it failed; the route to call back on."""
    _check_open(transfer, ctx.now)
    failed_at = _outcome_time(transfer, ctx, body.failed_at, "failed_at")
    problem = _threshold_problem(transfer, body.reason, failed_at)
    if problem is not None:
        raise problem

    reference = body.sender_reference or transfer.sender_reference
    problem = _reference_for_callback(reference)
    if problem is not None:
        raise problem
    permission = _permission_for_callback(ctx, transfer, body)
    assert reference is not None and permission is not None

    transfer.status = TransferStatus.failed.value
    transfer.failed_at = failed_at
    transfer.failure_reason = body.reason.value
    transfer.outcome_at = failed_at
    transfer.sender_reference = reference
    transfer.permission_to_share_at = permission
    return _route(ctx, transfer.from_org, transfer.to_org)


async def get_transfer(
    session: AsyncSession, principal: Principal, transfer_id: uuid.UUID, *, for_update: bool = False
) -> Transfer:
    # FOR UPDATE (PostgreSQL) serialises two outcomes recorded for one transfer at once.
    return await get_visible(
        session, Transfer, transfer_id, principal.body, name="transfer", for_update=for_update
    )


async def callback_request_id_for(
    session: AsyncSession, transfer_id: uuid.UUID
) -> uuid.UUID | None:
    return await session.scalar(
        select(CallbackRequest.id).where(CallbackRequest.transfer_id == transfer_id)
    )


def outcome_clause(outcome: TransferOutcome) -> ColumnElement[bool]:
    """The transfers that `outcome` counts, as the report does."""
    status, after, reason = {
        TransferOutcome.connected_within_threshold: (TransferStatus.connected, False, None),
        TransferOutcome.connected_after_threshold: (TransferStatus.connected, True, None),
        TransferOutcome.callback_wait_threshold_exceeded: (
            TransferStatus.failed,
            None,
            FailureReason.wait_threshold_exceeded,
        ),
        TransferOutcome.callback_high_call_volume: (
            TransferStatus.failed,
            None,
            FailureReason.high_call_volume,
        ),
        TransferOutcome.declined: (TransferStatus.declined, None, None),
        TransferOutcome.caller_hung_up: (TransferStatus.caller_hung_up, None, None),
        TransferOutcome.no_outcome_recorded: (TransferStatus.no_outcome_recorded, None, None),
    }[outcome]
    clauses = [Transfer.status == status.value]
    if after is not None:
        clauses.append(Transfer.answered_after_threshold.is_(after))
    if reason is not None:
        clauses.append(Transfer.failure_reason == reason.value)
    return and_(*clauses)


async def list_transfers(
    session: AsyncSession,
    principal: Principal,
    *,
    month: Month | None = None,
    status: TransferStatus | None = None,
    outcome: TransferOutcome | None = None,
    to_org: str | None = None,
    contact_reason: str | None = None,
    no_contact_reason: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[tuple[Transfer, uuid.UUID | None]], str | None]:
    """The body's transfers, newest first, a keyset page at a time, each with its call back
    request's id; `month` is the UK month of the outcome, the one the report counts it in."""
    query = select(Transfer).where(visible_to(Transfer, principal.body))
    if month is not None:
        start, end = month.utc_range()
        query = query.where(Transfer.outcome_at >= start, Transfer.outcome_at < end)
    if status is not None:
        query = query.where(Transfer.status == status.value)
    if outcome is not None:
        query = query.where(outcome_clause(outcome))
    if to_org is not None:
        query = query.where(Transfer.to_org == to_org)
    if contact_reason is not None:
        if no_contact_reason:
            raise Unprocessable(
                "conflicting_filters", "Give contact_reason or no_contact_reason, not both."
            )
        query = query.where(Transfer.contact_reason == contact_reason)
    if no_contact_reason:
        query = query.where(Transfer.contact_reason.is_(None))
    query = newest_first(query, Transfer.created_at, Transfer.id, cursor, limit)
    rows = list((await session.scalars(query)).all())
    page, next_cursor = split_page(rows, limit, lambda t: (t.created_at, t.id))
    callback_ids: dict[uuid.UUID, uuid.UUID] = {}
    if page:
        found = await session.execute(
            select(CallbackRequest.transfer_id, CallbackRequest.id).where(
                CallbackRequest.transfer_id.in_([t.id for t in page])
            )
        )
        callback_ids = {transfer_id: callback_id for transfer_id, callback_id in found}
    return [(t, callback_ids.get(t.id)) for t in page], next_cursor
