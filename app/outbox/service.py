"""The outbox table: queueing email in the same transaction as its record, claiming it with a
lease, and recording what became of each attempt."""

import uuid
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Table, and_, bindparam, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.database import driver_of
from app.core.errors import Conflict, NotFound
from app.core.settings import Settings, get_settings
from app.outbox.kinds import KINDS, UnknownKind
from app.outbox.models import DeliveryStatus, OutboxMessage

_message_id_domain: str | None = None  # set by use_settings (app.wiring); else the env's


def message_id_domain(settings: Settings) -> str:
    """The domain of the Message-IDs: the From address's."""
    return settings.email_from.rsplit("@", 1)[-1] or "localhost"


def use_settings(settings: Settings) -> None:
    """Take the Message-ID domain from `settings` (called once where the app is built)."""
    global _message_id_domain
    _message_id_domain = message_id_domain(settings)


def message_id_for(outbox_id: uuid.UUID, domain: str | None = None) -> str:
    # Stable across retries, so a receiver can recognise a resend after a crash.
    domain = domain or _message_id_domain or message_id_domain(get_settings())
    return f"<{outbox_id}@{domain}>"


def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    subject_id: uuid.UUID,
    to_address: str,
    now: datetime,
) -> OutboxMessage:
    """Queue the `kind` email about record `subject_id` in the session's transaction."""
    message = new_message(kind=kind, subject_id=subject_id, to_address=to_address, now=now)
    session.add(message)
    return message


def new_message(
    *, kind: str, subject_id: uuid.UUID, to_address: str, now: datetime
) -> OutboxMessage:
    """A pending message, not yet added to any session (see `enqueue`)."""
    outbox_id = uuid.uuid4()
    return OutboxMessage(
        id=outbox_id,
        kind=kind,
        subject_id=subject_id,
        to_address=to_address,
        message_id=message_id_for(outbox_id),
        status=DeliveryStatus.pending.value,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


@dataclass(frozen=True)
class Claim:
    """A claimed message: what the worker renders and sends it from, read by the claim's own
    UPDATE ... RETURNING (no second read of the row)."""

    id: uuid.UUID
    attempts: int  # including the attempt this claim is for
    kind: str
    subject_id: uuid.UUID
    to_address: str
    message_id: str


_OUTBOX: Table = OutboxMessage.__table__  # type: ignore[assignment]
_C = _OUTBOX.c


def _claimable() -> ColumnElement[bool]:
    """Due now (the bind `now`): pending or retrying from its time, or a lapsed claim."""
    now = bindparam("now", type_=_C.next_attempt_at.type)
    return or_(
        and_(
            _C.status.in_((DeliveryStatus.pending.value, DeliveryStatus.retrying.value)),
            _C.next_attempt_at <= now,
        ),
        # A worker that died holding a claim: its lease has run out.
        and_(_C.status == DeliveryStatus.sending.value, _C.lease_expires_at <= now),
    )


# The claim's two statements, built once (Core, bound values): built per call through the ORM,
# they cost more CPU than their round trips, once per batch.
# A lease that ran out on the last allowed attempt ends the message rather than retrying it.
_END_LAPSED = (
    update(_OUTBOX)
    .where(
        _C.status == DeliveryStatus.sending.value,
        _C.lease_expires_at <= bindparam("now", type_=_C.lease_expires_at.type),
        _C.attempts >= bindparam("max_attempts"),
    )
    .values(
        status=DeliveryStatus.dead.value,
        last_error_code="lease_expired",
        last_error_at=bindparam("now", type_=_C.last_error_at.type),
        lease_owner=None,
        lease_expires_at=None,
    )
)
_CANDIDATES = (
    select(_C.id)
    .where(_claimable())
    .order_by(_C.next_attempt_at, _C.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
    # Materialized, so PostgreSQL runs it once: as a plain `IN (subquery)` it may be rescanned,
    # and each rescan skips the rows just locked and takes more than `limit`.
    .cte("candidates")
    .prefix_with("MATERIALIZED", dialect="postgresql")
)
_LAPSED = _C.status == DeliveryStatus.sending.value
_CLAIM = (
    update(_OUTBOX)
    .where(_C.id.in_(select(_CANDIDATES.c.id)), _claimable())
    .values(
        status=DeliveryStatus.sending.value,
        lease_owner=bindparam("owner"),
        lease_expires_at=bindparam("lease_until", type_=_C.lease_expires_at.type),
        attempts=_C.attempts + 1,
        last_error_code=case((_LAPSED, "lease_expired"), else_=_C.last_error_code),
        last_error_at=case(
            (_LAPSED, bindparam("now", type_=_C.last_error_at.type)), else_=_C.last_error_at
        ),
    )
    .returning(_C.id, _C.attempts, _C.kind, _C.subject_id, _C.to_address, _C.message_id)
)


# The two statements for PostgreSQL's driver (what `claim` runs there; the same rows as the
# Core ones): the statuses written in, `$1` now, and the claim's own values after it.
_CLAIMABLE_ON_THE_DRIVER = (
    f"(status IN ('{DeliveryStatus.pending.value}', '{DeliveryStatus.retrying.value}')"
    f" AND next_attempt_at <= $1 OR status = '{DeliveryStatus.sending.value}'"
    " AND lease_expires_at <= $1)"
)
_END_LAPSED_ON_THE_DRIVER = (
    f"UPDATE {_OUTBOX.name} SET status = '{DeliveryStatus.dead.value}',"
    " last_error_code = 'lease_expired', last_error_at = $1, lease_owner = NULL,"
    f" lease_expires_at = NULL WHERE status = '{DeliveryStatus.sending.value}'"
    " AND lease_expires_at <= $1 AND attempts >= $2"
)
_CLAIM_ON_THE_DRIVER = (
    # The due ones through ix_outbox_messages_due, already in order, and the lapsed claims
    # (few: held by the workers) through the status index; the first `$2` of both are
    # claimed. One OR of both conditions would read and sort every row of the table instead.
    f"WITH due AS MATERIALIZED (SELECT id, next_attempt_at FROM {_OUTBOX.name}"
    f" WHERE status IN ('{DeliveryStatus.pending.value}', '{DeliveryStatus.retrying.value}')"
    " AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED),"
    f" lapsed AS MATERIALIZED (SELECT id, next_attempt_at FROM {_OUTBOX.name}"
    f" WHERE status = '{DeliveryStatus.sending.value}' AND lease_expires_at <= $1"
    " ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED),"
    " candidates AS MATERIALIZED (SELECT id FROM"
    " (SELECT * FROM due UNION ALL SELECT * FROM lapsed) AS either"
    " ORDER BY next_attempt_at, id LIMIT $2)"
    f" UPDATE {_OUTBOX.name} SET"
    f" status = '{DeliveryStatus.sending.value}', lease_owner = $3, lease_expires_at = $4,"
    " attempts = attempts + 1,"
    f" last_error_code = CASE WHEN status = '{DeliveryStatus.sending.value}'"
    " THEN 'lease_expired' ELSE last_error_code END,"
    f" last_error_at = CASE WHEN status = '{DeliveryStatus.sending.value}'"
    " THEN $1 ELSE last_error_at END"
    f" WHERE id IN (SELECT id FROM candidates) AND {_CLAIMABLE_ON_THE_DRIVER}"
    f" RETURNING {', '.join(field.name for field in fields(Claim))}"
)


async def claim(
    connection: AsyncConnection,
    *,
    owner: str,
    now: datetime,
    lease_seconds: int,
    max_attempts: int,
    limit: int,
) -> list[Claim]:
    """Claim up to `limit` due messages for `owner`, so that no other worker sends them until
    the lease expires. `connection` is in autocommit mode (the worker keeps one for a stretch
    of sending): each of the two statements commits by itself, and no BEGIN or COMMIT costs a
    round trip.

    Lapsed claims on their last attempt are ended first. Then one UPDATE whose WHERE repeats
    the claimable condition: on PostgreSQL its candidates are locked with FOR UPDATE SKIP
    LOCKED, so concurrent workers take disjoint rows without waiting; SQLite runs the
    statement under its single write lock, so the conditional UPDATE is atomic. On PostgreSQL
    both run straight on the driver's connection, without SQLAlchemy's execution layer (once
    per batch, that layer cost more CPU than the two round trips), and the claim takes its
    candidates in two parts, each through its own index: the due messages already in order,
    and the lapsed claims, whose first `limit` together are the same rows as SQLite's.
    """
    lease_until = now + timedelta(seconds=lease_seconds)
    if connection.dialect.name == "postgresql":
        driver = await driver_of(connection)
        await driver.execute(_END_LAPSED_ON_THE_DRIVER, now, max_attempts)
        rows = await driver.fetch(_CLAIM_ON_THE_DRIVER, now, limit, owner, lease_until)
        return [Claim(*row) for row in rows]  # RETURNING names Claim's fields in order
    await connection.execute(_END_LAPSED, {"now": now, "max_attempts": max_attempts})
    result = await connection.execute(
        _CLAIM, {"now": now, "limit": limit, "owner": owner, "lease_until": lease_until}
    )
    return [Claim(**row._mapping) for row in result]  # RETURNING names Claim's fields


def _held_by(ids: list[uuid.UUID], owner: str) -> tuple[ColumnElement[bool], ...]:
    # Only the holder of the claim records the outcome: a worker whose lease expired and was
    # taken over must not overwrite what the new holder does.
    return (
        OutboxMessage.id.in_(ids),
        OutboxMessage.status == DeliveryStatus.sending,
        OutboxMessage.lease_owner == owner,
    )


async def mark_sent(session: AsyncSession, outbox_id: uuid.UUID, *, now: datetime) -> bool:
    return outbox_id in await mark_all_sent(session, [outbox_id], now=now)


_MARK_SENT = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id.in_(bindparam("ids", expanding=True)),
        _OUTBOX.c.status != DeliveryStatus.sent.value,
    )
    .values(
        status=DeliveryStatus.sent.value,
        sent_at=bindparam("sent_at"),
        lease_owner=None,
        lease_expires_at=None,
    )
    .returning(_OUTBOX.c.id)
)


async def mark_all_sent(
    session: AsyncSession, ids: list[uuid.UUID], *, now: datetime
) -> set[uuid.UUID]:
    """Record messages the relay accepted as sent, in one statement; returns those it changed.

    The relay's acceptance is a fact whoever holds the claim now: a late record (the lease
    ran out and the message was taken over, retried or even made `dead`) still records `sent`
    and `sent_at`, and the other worker's outcome, should it come, no longer applies. Only a
    message already recorded as sent is left as it was (its first `sent_at` stands).

    One statement, so `session` may be in autocommit mode (the worker's recorder keeps one
    such session for a stretch of sending: one round trip per record)."""
    # A Core statement on the session's connection: the ORM's bulk-update path costs more
    # CPU than the round trip, once per acceptance.
    connection = await session.connection()
    rows = await connection.execute(_MARK_SENT, {"ids": ids, "sent_at": now})
    recorded = {row[0] for row in rows}
    await session.commit()
    return recorded


# The same UPDATE for PostgreSQL's driver, the ids as one array: what `record_sent` runs.
_MARK_SENT_ON_THE_DRIVER = (
    f"UPDATE {_OUTBOX.name} SET status = '{DeliveryStatus.sent.value}', sent_at = $2,"
    " lease_owner = NULL, lease_expires_at = NULL"
    f" WHERE id = ANY($1::uuid[]) AND status <> '{DeliveryStatus.sent.value}' RETURNING id"
)


async def record_sent(
    connection: AsyncConnection, ids: list[uuid.UUID], *, now: datetime
) -> set[uuid.UUID]:
    """`mark_all_sent` on a connection in autocommit mode (the worker's recorder keeps one for
    a stretch of sending): one statement, one round trip, no session. On PostgreSQL it runs
    straight on the driver's connection, without SQLAlchemy's execution layer (once per
    acceptance, that layer costs more CPU than the round trip)."""
    if connection.dialect.name == "postgresql":
        rows = await (await driver_of(connection)).fetch(_MARK_SENT_ON_THE_DRIVER, ids, now)
        return {row[0] for row in rows}
    result = await connection.execute(_MARK_SENT, {"ids": ids, "sent_at": now})
    return {row[0] for row in result}


async def extend_leases(
    session: AsyncSession, ids: list[uuid.UUID], *, owner: str, now: datetime, lease_seconds: int
) -> tuple[set[uuid.UUID], datetime]:
    """Renew `owner`'s claims on `ids` to `now + lease_seconds`, in one statement; returns the
    ids it still held (a claim that ran out may have been taken over) and the new expiry."""
    expires_at = now + timedelta(seconds=lease_seconds)
    rows = await session.scalars(
        update(OutboxMessage)
        .where(*_held_by(ids, owner))
        .values(lease_expires_at=expires_at)
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    )
    held = set(rows)
    await session.commit()
    return held, expires_at


async def release(session: AsyncSession, ids: list[uuid.UUID], *, owner: str) -> int:
    """Give back claims `owner` will not try (it is stopping): each message is as it was before
    the claim, due as before, and the attempt it was claimed for is not counted."""
    result = await session.execute(
        update(OutboxMessage)
        .where(*_held_by(ids, owner))
        .values(
            status=case(
                (OutboxMessage.attempts <= 1, DeliveryStatus.pending.value),
                else_=DeliveryStatus.retrying.value,
            ),
            attempts=OutboxMessage.attempts - 1,
            lease_owner=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


UNSENT = (DeliveryStatus.pending, DeliveryStatus.sending, DeliveryStatus.retrying)


async def unsent(session: AsyncSession) -> dict[DeliveryStatus, int]:
    """How many messages wait to be sent, by state (`pending`, `sending`, `retrying`)."""
    rows = await session.execute(
        select(OutboxMessage.status, func.count())
        .where(OutboxMessage.status.in_(UNSENT))
        .group_by(OutboxMessage.status)
    )
    return {DeliveryStatus(status): n for status, n in rows}


async def mark_failed(
    session: AsyncSession,
    outbox_id: uuid.UUID,
    *,
    owner: str,
    now: datetime,
    code: str,
    retry_at: datetime | None,
) -> bool:
    """Record a failed attempt: `retrying` from `retry_at`, or `dead` when it is None."""
    status = DeliveryStatus.dead if retry_at is None else DeliveryStatus.retrying
    values: dict[str, object] = {
        "status": status.value,
        "last_error_code": code[:64],
        "last_error_at": now,
        "lease_owner": None,
        "lease_expires_at": None,
    }
    if retry_at is not None:
        values["next_attempt_at"] = retry_at
    result = await session.execute(
        update(OutboxMessage)
        .where(*_held_by([outbox_id], owner))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def list_messages(
    session: AsyncSession, *, status: DeliveryStatus | None, limit: int
) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    return list((await session.scalars(query.limit(limit))).all())


async def retry(session: AsyncSession, any_id: uuid.UUID, *, now: datetime) -> OutboxMessage:
    """Put a message back in the queue with all its attempts, due now.

    `any_id` is the outbox message's id, or the id of the record it is about (the call back
    request's or the feedback's: what the API shows). The message's kind may refuse: e.g. a
    call back request whose caller's details were purged can no longer be sent.
    """
    message = await session.scalar(
        select(OutboxMessage)
        .where(or_(OutboxMessage.id == any_id, OutboxMessage.subject_id == any_id))
        .order_by(OutboxMessage.id != any_id)  # the message's own id first
        .limit(1)
        .with_for_update()
    )
    if message is None:
        raise NotFound("not_found", f"No outbox message for {any_id}.")
    try:
        refusal = await KINDS.get(message.kind).refusal(session, message.subject_id)
    except UnknownKind:
        raise Conflict(
            "unknown_kind", f"Message {message.id} is of a kind this service does not send."
        ) from None
    if refusal is not None:
        raise Conflict(refusal.code, f"Message {message.id} cannot be sent: {refusal.reason}.")
    if message.status == DeliveryStatus.sent:
        raise Conflict("already_sent", f"Message {message.id} was sent at {message.sent_at}.")
    if message.status == DeliveryStatus.sending and (
        message.lease_expires_at is not None and message.lease_expires_at > now
    ):
        raise Conflict(
            "being_sent",
            f"Message {message.id} is being sent by {message.lease_owner}; "
            f"its claim ends at {message.lease_expires_at}.",
        )
    message.status = DeliveryStatus.pending.value
    message.attempts = 0
    message.next_attempt_at = now
    message.lease_owner = None
    message.lease_expires_at = None
    await session.commit()
    return message
