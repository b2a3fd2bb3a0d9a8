"""The rules of a warm transfer: who may dial whom, how long to wait, when to call back."""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Table, TextClause, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.models import AuditEvent
from app.callbacks import service as callbacks
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.auth import Principal
from app.core.database import Base
from app.core.errors import DomainError, NotFound, Unprocessable
from app.core.rules import not_before, not_in_future
from app.outbox.models import OutboxMessage
from app.protocol.routes import ReferenceRule, Route, RouteTable
from app.transfers import exceptions
from app.transfers.models import Transfer
from app.transfers.schemas import (
    ConnectedOutcome,
    FailedOutcome,
    FailureReason,
    TransferConnect,
    TransferCreate,
    TransferFail,
    TransferStatus,
)


class TransferContext:
    """What every rule needs besides the transfer: the table, now, the allowed skew."""

    def __init__(self, routes: RouteTable, now: datetime, skew_seconds: int, domain: str):
        self.routes = routes
        self.now = now
        self.skew_seconds = skew_seconds
        self.message_id_domain = domain


def _route(ctx: TransferContext, from_org: str, to_org: str) -> Route:
    route = ctx.routes.route(from_org, to_org)
    if route is None:
        raise exceptions.no_route(from_org, to_org)
    return route


def _permission(
    ctx: TransferContext, value: datetime | None, *, required: bool, why: str
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
    principal: Principal, ctx: TransferContext, body: TransferCreate
) -> list[DomainError]:
    """Every rule `start_transfer` would refuse `body` for, not only the first: for a form
    that shows all its errors at once. `body` may be a draft (`model_construct`) whose
    fields the request model refused; those fields are left to the model's errors."""
    route = ctx.routes.route(principal.org, body.to_org)
    if route is None:
        return [exceptions.no_route(principal.org, body.to_org)]
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
    session: AsyncSession, principal: Principal, ctx: TransferContext, body: TransferCreate
) -> tuple[Transfer, CallbackRequest | None]:
    route = _route(ctx, principal.org, body.to_org)
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
        from_org=principal.org,
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
            transfer=transfer,
            route=route,
            principal=principal,
            caller=body.outcome.caller,
            now=ctx.now,
            message_id_domain=ctx.message_id_domain,
            due=ctx.routes.callback_due(route, ctx.now),
        )
        await insert_new_records(session, transfer, callback, details, message, created, requested)
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


def connect(transfer: Transfer, ctx: TransferContext, body: TransferConnect) -> Transfer:
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
    ctx: TransferContext,
    body: TransferFail,
) -> CallbackRequest:
    route = _record_failure(transfer, ctx, body)
    return callbacks.create_callback_request(
        session,
        transfer=transfer,
        route=route,
        principal=principal,
        caller=body.caller,
        now=ctx.now,
        message_id_domain=ctx.message_id_domain,
        due=ctx.routes.callback_due(route, ctx.now),
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
    ctx: TransferContext, transfer: Transfer, body: TransferFail
) -> datetime | None:
    # The caller's contact details are shared, so permission is always needed here.
    return _permission(
        ctx,
        body.permission_to_share_at or transfer.permission_to_share_at,
        required=True,
        why="their contact details go to the other body",
    )


def failure_problems(
    transfer: Transfer, ctx: TransferContext, body: TransferFail
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


def _record_failure(transfer: Transfer, ctx: TransferContext, body: TransferFail) -> Route:
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


# Parents before children, as the foreign keys need; then the two audit rows (the transfer's
# and the call back request's), which have no foreign keys.
_NEW_RECORD_TABLES: tuple[Table, ...] = (
    Transfer.__table__,  # type: ignore[assignment]
    CallbackRequest.__table__,  # type: ignore[assignment]
    CallerDetails.__table__,  # type: ignore[assignment]
    OutboxMessage.__table__,  # type: ignore[assignment]
    AuditEvent.__table__,  # type: ignore[assignment]
    AuditEvent.__table__,  # type: ignore[assignment]
)


def _one_statement_insert() -> TextClause:
    """WITH t AS (INSERT ...), c AS (INSERT ...), d AS (INSERT ...) INSERT ...: one round trip.

    PostgreSQL checks the foreign keys at the end of the statement, when every row is in.
    Built once, with each table's column types, so values are bound as the ORM binds them.
    """
    inserts, binds = [], []
    for n, table in enumerate(_NEW_RECORD_TABLES):
        names = [column.name for column in table.columns]
        inserts.append(
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join(f':r{n}_{name}' for name in names)})"
        )
        binds += [bindparam(f"r{n}_{c.name}", type_=c.type) for c in table.columns]
    ctes = ", ".join(f"r{n} AS ({sql})" for n, sql in enumerate(inserts[:-1]))
    return text(f"WITH {ctes} {inserts[-1]}").bindparams(*binds)


_INSERT_NEW_RECORDS = _one_statement_insert()
_INSERTS_ONE_BY_ONE = tuple(table.insert() for table in _NEW_RECORD_TABLES)
# Per table, each column's attribute and its bind name in the one statement: worked out once,
# not on every request.
_COLUMN_KEYS: tuple[tuple[tuple[str, str], ...], ...] = tuple(
    tuple((column.key, f"r{n}_{column.name}") for column in table.columns)
    for n, table in enumerate(_NEW_RECORD_TABLES)
)


async def insert_new_records(session: AsyncSession, *records: Base) -> None:
    """Write new transfer, call back request, caller details, outbox and two audit rows.

    On PostgreSQL one statement; elsewhere (SQLite) one INSERT per table. The objects stay
    outside the session: they are the values written, returned to the caller as they are.
    """
    # The session's connection and transaction, without the ORM's execution layer on top.
    connection = await session.connection()
    columns = zip(_COLUMN_KEYS, records, strict=True)
    if connection.dialect.name == "postgresql":
        params = {bind: getattr(record, key) for keys, record in columns for key, bind in keys}
        await connection.execute(_INSERT_NEW_RECORDS, params)
        return
    for insert, (keys, record) in zip(_INSERTS_ONE_BY_ONE, columns, strict=True):
        await connection.execute(insert, {key: getattr(record, key) for key, _ in keys})


async def get_transfer(
    session: AsyncSession, principal: Principal, transfer_id: uuid.UUID, *, for_update: bool = False
) -> Transfer:
    # FOR UPDATE (PostgreSQL) serialises two outcomes recorded for one transfer at once.
    transfer = await session.get(Transfer, transfer_id, with_for_update=for_update)
    # Another body's record is "not found", never "forbidden": its existence is not ours to know.
    if transfer is None or transfer.from_org != principal.org:
        raise NotFound("not_found", "No such transfer.")
    return transfer


async def callback_request_id_for(
    session: AsyncSession, transfer_id: uuid.UUID
) -> uuid.UUID | None:
    return await session.scalar(
        select(CallbackRequest.id).where(CallbackRequest.transfer_id == transfer_id)
    )
