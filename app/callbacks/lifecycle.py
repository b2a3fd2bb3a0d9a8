"""The life of a call back request: acknowledged, attempted and closed by the receiving body.

States: `requested` (made; its email queued) -> `acknowledged` (the receiving team has taken
it on) -> `closed`, with an outcome: `reached`, `unreachable` (the route's unsuccessful
attempts used up, or a wrong number), `withdrawn` (by the sending body) or `returned` (the
receiving body says it is not for them, with a reason). A closed request never changes again.

Who may do what (`side_of`): the body it is addressed to (`to_org`) reads it and makes every
transition but withdrawal; the body that sent it (`from_org`) reads it and may withdraw it
while it is open; any other body is told it does not exist.

Every change is one conditional UPDATE on the request's `version` (its ETag), so of two
advisers acting at once exactly one wins; the other's change is decided again on what the
winner left (e.g. 409 `callback_already_acknowledged`, saying who and when). On PostgreSQL
the row is also read `FOR UPDATE`, so the loser waits for the winner rather than retrying.

The functions take a session, the principal, ids and plain values and return models, so
that the pages can call them as the API does; none of them commits.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.callbacks.emails import KIND as CALLBACK_REQUEST_EMAIL
from app.callbacks.models import CallbackAttempt, CallbackRequest, CallerDetails
from app.core.access import get_visible_row, visible_to
from app.core.api_keys import ApiKey
from app.core.auth import Principal
from app.core.errors import Conflict, DomainError, Forbidden
from app.core.months import Month
from app.core.pagination import decode_cursor, newest_first, split_page
from app.core.rules import not_before, not_in_future
from app.core.versioned import (
    CHANGE_TRIES,
    concurrent_change,
    load_for_change,
    save_if_unchanged,
)
from app.core.working_time import working_seconds_between
from app.outbox.models import OutboxMessage
from app.protocol.context import RequestContext


class CallbackState(StrEnum):
    requested = "requested"
    acknowledged = "acknowledged"
    closed = "closed"


class CallbackOutcome(StrEnum):
    reached = "reached"
    unreachable = "unreachable"
    withdrawn = "withdrawn"
    returned = "returned"


class ReturnReason(StrEnum):
    not_our_remit = "not_our_remit"
    duplicate = "duplicate"
    wrong_details = "wrong_details"


class AttemptResult(StrEnum):
    reached = "reached"
    no_answer = "no_answer"
    voicemail_left = "voicemail_left"
    busy = "busy"
    wrong_number = "wrong_number"


class Direction(StrEnum):
    incoming = "incoming"  # addressed to the caller's body
    outgoing = "outgoing"  # sent by it


class Side(StrEnum):
    sending = "sending"
    receiving = "receiving"


# The route's default when a request's route has left the table since it was made.
DEFAULT_MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class CallbackView:
    """A call back request as either body may read it."""

    callback: CallbackRequest
    caller: CallerDetails | None
    message: OutboxMessage | None
    attempts: Sequence[CallbackAttempt]
    overdue: bool


# --- who sees what ------------------------------------------------------------------------


# The one access rule (core.access), widened: a call back request is also the body's it is
# addressed to. Anyone else: not found (docs/SECURITY.md).
ADDRESSED_TO = ("to_org",)
NAME = "call back request"


def side_of(principal: Principal, callback: CallbackRequest) -> Side:
    """Which side of a request the principal, who may see it, is on."""
    return Side.sending if principal.body == callback.from_org else Side.receiving


def _receiving_only(principal: Principal, callback: CallbackRequest) -> None:
    if side_of(principal, callback) is not Side.receiving:
        raise Forbidden(
            "callback_receiving_body_only",
            "Only the body the call back request is addressed to can do this.",
        )


def _sending_only(principal: Principal, callback: CallbackRequest) -> None:
    if side_of(principal, callback) is not Side.sending:
        raise Forbidden(
            "callback_sending_body_only",
            "Only the body that made the call back request can withdraw it.",
        )


# --- reading ------------------------------------------------------------------------------


def is_overdue(callback: CallbackRequest, now: datetime) -> bool:
    """Open, and past its first-attempt target without an attempt or past its close target."""
    if callback.state == CallbackState.closed:
        return False
    if callback.first_attempt_at is None and now > callback.first_attempt_due_at:
        return True
    return now > callback.close_due_at


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """`is_overdue` in SQL."""
    return and_(
        CallbackRequest.state != CallbackState.closed.value,
        or_(
            and_(
                CallbackRequest.first_attempt_at.is_(None),
                CallbackRequest.first_attempt_due_at < now,
            ),
            CallbackRequest.close_due_at < now,
        ),
    )


def stale_clause(opened_before: datetime) -> ColumnElement[bool]:
    """Still open, and made before `opened_before` (now less HANDOFF_OPEN_CALLBACK_MAX_DAYS):
    a request retention does not purge while it is open, listed for team leaders instead."""
    return and_(
        CallbackRequest.state != CallbackState.closed.value,
        CallbackRequest.requested_at < opened_before,
    )


async def count_stale(
    session: AsyncSession, body: str, opened_before: datetime
) -> dict[Direction, int]:
    """How many of the body's requests, incoming and outgoing, are stale (two counts)."""
    counts = {}
    for direction in (Direction.incoming, Direction.outgoing):
        counts[direction] = (
            await session.scalar(
                select(func.count())
                .select_from(CallbackRequest)
                .where(_direction_clause(body, direction), stale_clause(opened_before))
            )
            or 0
        )
    return counts


def with_details() -> Select:  # type: ignore[type-arg]
    """A request with its caller's details (None once purged) and its email's outbox row."""
    return (
        select(CallbackRequest, CallerDetails, OutboxMessage)
        .outerjoin(CallerDetails, CallerDetails.callback_request_id == CallbackRequest.id)
        .outerjoin(
            OutboxMessage,
            and_(
                OutboxMessage.kind == CALLBACK_REQUEST_EMAIL,
                OutboxMessage.subject_id == CallbackRequest.id,
            ),
        )
    )


async def _attempts(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[CallbackAttempt]]:
    found: dict[uuid.UUID, list[CallbackAttempt]] = {i: [] for i in ids}
    if not ids:
        return found
    rows = await session.scalars(
        select(CallbackAttempt)
        .where(CallbackAttempt.callback_request_id.in_(ids))
        .order_by(CallbackAttempt.attempted_at, CallbackAttempt.recorded_at, CallbackAttempt.id)
    )
    for attempt in rows:
        found[attempt.callback_request_id].append(attempt)
    return found


async def _views(session: AsyncSession, rows: Sequence[Any], now: datetime) -> list[CallbackView]:
    attempts = await _attempts(session, [row[0].id for row in rows])
    return [
        CallbackView(row[0], row[1], row[2], attempts[row[0].id], is_overdue(row[0], now))
        for row in rows
    ]


async def get_callback(
    session: AsyncSession, principal: Principal, callback_id: uuid.UUID, now: datetime
) -> CallbackView:
    """The request as the sending body or the body it is addressed to reads it."""
    row = await get_visible_row(
        session,
        with_details().execution_options(populate_existing=True),
        CallbackRequest,
        callback_id,
        principal.body,
        name=NAME,
        also=ADDRESSED_TO,
    )
    return (await _views(session, [row], now))[0]


def _oldest_due_first(query: Select, cursor: str | None, limit: int) -> Select:  # type: ignore[type-arg]
    """Keyset pages over (close_due_at, id), most urgent first."""
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        query = query.where(
            or_(
                CallbackRequest.close_due_at > at,
                and_(CallbackRequest.close_due_at == at, CallbackRequest.id > last_id),
            )
        )
    return query.order_by(CallbackRequest.close_due_at, CallbackRequest.id).limit(limit + 1)


def list_statement(
    org: str,
    *,
    direction: Direction,
    now: datetime,
    month: Month | None = None,
    state: CallbackState | None = None,
    open_only: bool = False,
    overdue: bool | None = None,
    delivery_status: str | None = None,
    stale_before: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Select:  # type: ignore[type-arg]
    """The query of one page of `list_callbacks` (one row more than `limit`: the extra row only
    says that there is more). Incoming: served by ix_callback_requests_incoming[_state]."""
    query = with_details().where(_direction_clause(org, direction))
    if month is not None:
        start, end = month.utc_range()
        query = query.where(
            CallbackRequest.requested_at >= start, CallbackRequest.requested_at < end
        )
    if state is not None:
        query = query.where(CallbackRequest.state == state.value)
    if open_only:
        query = query.where(CallbackRequest.state != CallbackState.closed.value)
    if overdue is not None:
        clause = overdue_clause(now)
        query = query.where(clause if overdue else not_(clause))
    if delivery_status is not None:
        query = query.where(OutboxMessage.status == delivery_status)
    if stale_before is not None:
        query = query.where(stale_clause(stale_before))
    if direction is Direction.incoming:
        return _oldest_due_first(query, cursor, limit)
    return newest_first(query, CallbackRequest.requested_at, CallbackRequest.id, cursor, limit)


async def list_callbacks(
    session: AsyncSession,
    principal: Principal,
    *,
    direction: Direction,
    now: datetime,
    month: Month | None = None,
    state: CallbackState | None = None,
    open_only: bool = False,
    overdue: bool | None = None,
    delivery_status: str | None = None,
    stale_before: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[CallbackView], str | None]:
    """The body's outgoing requests newest first, or its incoming ones most urgent first
    (`close_due_at`, then id), a keyset page at a time; `open_only`: not yet closed (the
    pages' default list)."""
    query = list_statement(
        principal.body,
        direction=direction,
        now=now,
        month=month,
        state=state,
        open_only=open_only,
        overdue=overdue,
        delivery_status=delivery_status,
        stale_before=stale_before,
        limit=limit,
        cursor=cursor,
    )
    rows = list((await session.execute(query)).all())
    if direction is Direction.incoming:
        page, next_cursor = split_page(rows, limit, lambda r: (r[0].close_due_at, r[0].id))
    else:
        page, next_cursor = split_page(rows, limit, lambda r: (r[0].requested_at, r[0].id))
    return await _views(session, page, now), next_cursor


def _direction_clause(body: str, direction: Direction) -> Any:
    """The requests addressed to `body` (incoming) or made by it (outgoing)."""
    if direction is Direction.incoming:
        return visible_to(CallbackRequest, body, owner="to_org")
    return visible_to(CallbackRequest, body)


async def count_open(
    session: AsyncSession, principal: Principal, *, direction: Direction, now: datetime
) -> tuple[int, int]:
    """How many of the body's incoming or outgoing requests are open, and how many of those
    are overdue now: one aggregate query (the team leaders' overview)."""
    row = (
        await session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((overdue_clause(now), 1), else_=0)), 0),
            )
            .select_from(CallbackRequest)
            .where(
                _direction_clause(principal.body, direction),
                CallbackRequest.state != CallbackState.closed.value,
            )
        )
    ).one()
    return int(row[0]), int(row[1])


# --- changing -----------------------------------------------------------------------------


class PreconditionFailed(DomainError):
    status = 412
    title = "Precondition failed"


def etag(callback: CallbackRequest) -> str:
    return f'"{callback.version}"'


def _matches(if_match: str, version: int) -> bool:
    for tag in if_match.split(","):
        tag = tag.strip()
        if tag == "*":
            return True
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == f'"{version}"':
            return True
    return False


def _check_precondition(callback: CallbackRequest, if_match: str | None) -> None:
    if if_match is not None and not _matches(if_match, callback.version):
        raise PreconditionFailed(
            "precondition_failed",
            "The call back request has changed since it was read (its ETag is now "
            f"{etag(callback)}); read it again and decide again.",
            extra={"etag": etag(callback)},
        )


def _check_open(callback: CallbackRequest) -> None:
    if callback.state == CallbackState.closed:
        raise Conflict(
            "callback_closed",
            f"The call back request is closed ({callback.outcome}) and cannot change again.",
            extra={"outcome": callback.outcome, "closed_at": _iso(callback.closed_at)},
        )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def _already_acknowledged(session: AsyncSession, callback: CallbackRequest) -> Conflict:
    key = (
        await session.execute(
            select(ApiKey.name, ApiKey.org).where(ApiKey.id == callback.acknowledged_by_key_id)
        )
    ).first()
    at = callback.acknowledged_at
    return Conflict(
        "callback_already_acknowledged",
        f"The call back request was already acknowledged at {_iso(at)}"
        + (f" by the key '{key.name}' of {key.org}." if key else "."),
        extra={
            "acknowledged_at": _iso(at),
            "acknowledged_by": {"key_name": key.name, "org": key.org} if key else None,
        },
    )


async def _load(
    session: AsyncSession, principal: Principal, callback_id: uuid.UUID, *, again: bool = False
) -> CallbackRequest:
    return await load_for_change(
        session,
        CallbackRequest,
        callback_id,
        principal.body,
        name=NAME,
        also=ADDRESSED_TO,
        again=again,
    )


def _audit(
    session: AsyncSession,
    principal: Principal,
    action: audit.AuditAction,
    callback: CallbackRequest,
    now: datetime,
) -> None:
    audit.record(
        session,
        principal,
        action,
        audit.RecordType.callback_request,
        callback.id,
        org=principal.body,
        now=now,
    )


def _acknowledgement(principal: Principal, now: datetime) -> dict[str, Any]:
    return {
        "state": CallbackState.acknowledged.value,
        "acknowledged_at": now,
        "acknowledged_by_key_id": principal.key_id,
    }


def _working_seconds(
    ctx: RequestContext, callback: CallbackRequest, moment: datetime
) -> float | None:
    """Working seconds from the request to `moment` in the receiving body's opening hours
    (what the report aggregates); None when the body has left the route table."""
    body = ctx.routes.body(callback.to_org)
    if body is None:
        return None
    # A request may be stamped a little after now (the allowed clock skew): count it as 0.
    return working_seconds_between(
        callback.requested_at, max(moment, callback.requested_at), body.opening_hours
    )


def _closing(
    principal: Principal, ctx: RequestContext, callback: CallbackRequest, outcome: CallbackOutcome
) -> dict[str, Any]:
    return {
        "state": CallbackState.closed.value,
        "outcome": outcome.value,
        "closed_at": ctx.now,
        "closed_by_key_id": principal.key_id,
        "close_working_seconds": _working_seconds(ctx, callback, ctx.now),
    }


async def acknowledge(
    session: AsyncSession,
    principal: Principal,
    ctx: RequestContext,
    callback_id: uuid.UUID,
    *,
    if_match: str | None = None,
) -> CallbackRequest:
    """The receiving team takes the request on. Exactly one of two at once wins."""
    for n in range(CHANGE_TRIES):
        callback = await _load(session, principal, callback_id, again=n > 0)
        _receiving_only(principal, callback)
        _check_precondition(callback, if_match)
        _check_open(callback)
        if callback.state == CallbackState.acknowledged:
            raise await _already_acknowledged(session, callback)
        if await save_if_unchanged(session, callback, **_acknowledgement(principal, ctx.now)):
            _audit(session, principal, audit.AuditAction.acknowledge, callback, ctx.now)
            return callback
    raise concurrent_change()


def _max_attempts(ctx: RequestContext, callback: CallbackRequest) -> int:
    route = ctx.routes.route(callback.from_org, callback.to_org)
    return route.callback_max_attempts if route is not None else DEFAULT_MAX_ATTEMPTS


async def record_attempt(
    session: AsyncSession,
    principal: Principal,
    ctx: RequestContext,
    callback_id: uuid.UUID,
    *,
    result: AttemptResult,
    attempted_at: datetime | None = None,
    if_match: str | None = None,
) -> tuple[CallbackRequest, CallbackAttempt]:
    """One try to call the caller back. Acknowledges an unacknowledged request; `reached`
    closes it as reached; `wrong_number`, or the route's `callback_max_attempts`-th
    unsuccessful attempt, closes it as unreachable."""
    moment = not_in_future(attempted_at or ctx.now, ctx.now, ctx.skew_seconds, "attempted_at")
    for n in range(CHANGE_TRIES):
        callback = await _load(session, principal, callback_id, again=n > 0)
        _receiving_only(principal, callback)
        _check_precondition(callback, if_match)
        _check_open(callback)
        not_before(moment, callback.requested_at, "attempted_at", "requested_at")

        values: dict[str, Any] = {}
        actions = [audit.AuditAction.attempt]
        if callback.state == CallbackState.requested:
            values |= _acknowledgement(principal, ctx.now)
            actions.insert(0, audit.AuditAction.acknowledge)
        if callback.first_attempt_at is None or moment < callback.first_attempt_at:
            values["first_attempt_at"] = moment
            values["first_attempt_working_seconds"] = _working_seconds(ctx, callback, moment)

        outcome: CallbackOutcome | None = None
        if result is AttemptResult.reached:
            outcome = CallbackOutcome.reached
        elif result is AttemptResult.wrong_number:
            outcome = CallbackOutcome.unreachable
        else:
            unsuccessful = await session.scalar(
                select(func.count())
                .select_from(CallbackAttempt)
                .where(
                    CallbackAttempt.callback_request_id == callback.id,
                    CallbackAttempt.result != AttemptResult.reached.value,
                )
            )
            if (unsuccessful or 0) + 1 >= _max_attempts(ctx, callback):
                outcome = CallbackOutcome.unreachable
        if outcome is not None:
            values |= _closing(principal, ctx, callback, outcome)
            actions.append(audit.AuditAction.close)

        if await save_if_unchanged(session, callback, **values):
            attempt = CallbackAttempt(
                id=uuid.uuid4(),
                callback_request_id=callback.id,
                attempted_at=moment,
                result=result.value,
                recorded_at=ctx.now,
                recorded_by_key_id=principal.key_id,
            )
            session.add(attempt)
            for action in actions:
                _audit(session, principal, action, callback, ctx.now)
            return callback, attempt
    raise concurrent_change()


async def return_callback(
    session: AsyncSession,
    principal: Principal,
    ctx: RequestContext,
    callback_id: uuid.UUID,
    *,
    reason: ReturnReason,
    if_match: str | None = None,
) -> CallbackRequest:
    """The receiving body says the request is not for them: closed as returned."""
    for n in range(CHANGE_TRIES):
        callback = await _load(session, principal, callback_id, again=n > 0)
        _receiving_only(principal, callback)
        _check_precondition(callback, if_match)
        _check_open(callback)
        values = _closing(principal, ctx, callback, CallbackOutcome.returned)
        if await save_if_unchanged(session, callback, return_reason=reason.value, **values):
            _audit(session, principal, audit.AuditAction.return_, callback, ctx.now)
            return callback
    raise concurrent_change()


async def withdraw(
    session: AsyncSession,
    principal: Principal,
    ctx: RequestContext,
    callback_id: uuid.UUID,
    *,
    if_match: str | None = None,
) -> CallbackRequest:
    """The sending body takes back an open request (a duplicate, or the caller rang in)."""
    for n in range(CHANGE_TRIES):
        callback = await _load(session, principal, callback_id, again=n > 0)
        _sending_only(principal, callback)
        _check_precondition(callback, if_match)
        _check_open(callback)
        if await save_if_unchanged(
            session, callback, **_closing(principal, ctx, callback, CallbackOutcome.withdrawn)
        ):
            _audit(session, principal, audit.AuditAction.withdraw, callback, ctx.now)
            return callback
    raise concurrent_change()
