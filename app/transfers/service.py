"""The rules of a warm transfer: who may dial whom, how long to wait, when to call back."""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.callbacks import service as callbacks
from app.callbacks.models import CallbackRequest
from app.core.access import get_visible
from app.core.auth import Principal
from app.core.errors import DomainError, Unprocessable
from app.core.rules import not_before, not_in_future
from app.protocol.context import RequestContext
from app.protocol.exceptions import no_route
from app.protocol.routes import ReferenceRule, Route
from app.transfers import exceptions, new_records
from app.transfers.models import Transfer
from app.transfers.schemas import (
    Caller,
    ConnectedOutcome,
    FailedOutcome,
    FailureReason,
    TransferConnect,
    TransferCreate,
    TransferFail,
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
    for problem in (_topic_problem(route, body.topic), _reference_problem(route, body)):
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
        )
        await new_records.insert(session, transfer, callback, details, message, created, requested)
        return transfer, callback

    session.add_all((transfer, created))
    if isinstance(body.outcome, ConnectedOutcome):
        connect(transfer, ctx, body.outcome)
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


def _check_waiting(transfer: Transfer) -> None:
    if transfer.status != TransferStatus.waiting:
        raise exceptions.transfer_not_waiting(transfer.status)


def connect(transfer: Transfer, ctx: RequestContext, body: TransferConnect) -> Transfer:
    _check_waiting(transfer)
    connected_at = not_in_future(
        body.connected_at or ctx.now, ctx.now, ctx.skew_seconds, "connected_at"
    )
    not_before(connected_at, transfer.wait_started_at, "connected_at", "wait_started_at")
    elapsed = _elapsed(transfer, connected_at)
    # "longer than 1 minute" / "exceeds 30 seconds": exactly the threshold may still connect.
    if elapsed > transfer.wait_threshold_seconds:
        raise exceptions.wait_threshold_exceeded(elapsed, transfer.wait_threshold_seconds)
    if transfer.permission_to_share_at and transfer.permission_to_share_at > connected_at:
        raise Unprocessable(
            "permission_to_share_after_sharing",
            "Permission to share must be given before the call is connected.",
            extra={"field": "permission_to_share_at"},
        )
    transfer.status = TransferStatus.connected.value
    transfer.connected_at = connected_at
    transfer.outcome_at = connected_at
    return transfer


async def fail(
    session: AsyncSession,
    transfer: Transfer,
    principal: Principal,
    ctx: RequestContext,
    body: TransferFail,
) -> CallbackRequest:
    route = _record_failure(transfer, ctx, body)
    return callbacks.create_callback_request(
        session,
        _failure(transfer, body.caller),
        route=route,
        principal=principal,
        now=ctx.now,
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
        lambda: _check_waiting(transfer),
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
    _check_waiting(transfer)
    failed_at = not_in_future(body.failed_at or ctx.now, ctx.now, ctx.skew_seconds, "failed_at")
    not_before(failed_at, transfer.wait_started_at, "failed_at", "wait_started_at")
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
