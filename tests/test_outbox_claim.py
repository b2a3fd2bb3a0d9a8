"""The outbox's claim: which messages a worker takes, in which order, and (on PostgreSQL) that
it reads them through their index rather than the table's whole history."""

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from app.core.clock import FixedClock
from app.outbox import service
from app.outbox.models import DeliveryStatus, OutboxMessage
from tests.outbox_support import autocommit


def _message(
    now: datetime, status: DeliveryStatus, due: timedelta, **more: object
) -> OutboxMessage:
    message = service.new_message(
        kind="callback_request", subject_id=uuid.uuid4(), to_address="team@example.org", now=now
    )
    message.status = status.value
    message.next_attempt_at = now + due
    for name, value in more.items():
        setattr(message, name, value)
    return message


async def _claim(app, now: datetime, limit: int) -> list[uuid.UUID]:  # type: ignore[no-untyped-def]
    async with autocommit(app) as connection:
        claims = await service.claim(
            connection, owner="w", now=now, lease_seconds=60, max_attempts=5, limit=limit
        )
    return [c.id for c in claims]


async def test_claims_take_the_longest_waiting_first_whether_pending_retrying_or_lapsed(
    app, clock: FixedClock
) -> None:
    """Due messages of every kind are claimed oldest first, by the time they became due; a
    message not yet due, one held under a live lease, and one sent or dead are never taken."""
    now = clock.now()
    minute = timedelta(minutes=1)
    lapsed = {"lease_owner": "gone", "lease_expires_at": now - minute, "attempts": 1}
    live = {"lease_owner": "busy", "lease_expires_at": now + minute, "attempts": 1}
    rows = {
        "pending, 4 min": _message(now, DeliveryStatus.pending, -4 * minute),
        "lapsed, 3 min": _message(now, DeliveryStatus.sending, -3 * minute, **lapsed),
        "retrying, 2 min": _message(now, DeliveryStatus.retrying, -2 * minute, attempts=1),
        "pending, 1 min": _message(now, DeliveryStatus.pending, -minute),
        "pending, not yet": _message(now, DeliveryStatus.pending, minute),
        "retrying, not yet": _message(now, DeliveryStatus.retrying, minute, attempts=1),
        "held": _message(now, DeliveryStatus.sending, -5 * minute, **live),
        "sent": _message(now, DeliveryStatus.sent, -6 * minute),
        "dead": _message(now, DeliveryStatus.dead, -6 * minute),
    }
    async with app.state.sessionmaker() as session:
        session.add_all(rows.values())
        await session.commit()
    names = {message.id: name for name, message in rows.items()}

    first = [names[i] for i in await _claim(app, now, limit=3)]
    rest = [names[i] for i in await _claim(app, now, limit=10)]

    assert first == ["pending, 4 min", "lapsed, 3 min", "retrying, 2 min"]
    assert rest == ["pending, 1 min"]
    assert await _claim(app, now, limit=10) == []


async def test_the_claim_reads_the_due_messages_in_order_from_their_own_index(
    app, clock: FixedClock, is_postgres: bool
) -> None:
    """However many messages were sent before, a claim reads only the first due ones, in
    order, from the index of the messages waiting: no scan and sort of the table's history
    (PostgreSQL plans, with sequential scans ruled out as on a small table)."""
    if not is_postgres:
        pytest.skip("index plans are checked on PostgreSQL")
    now = clock.now()
    async with app.state.sessionmaker() as session:
        session.add_all(
            _message(now, DeliveryStatus.sent, -timedelta(minutes=n)) for n in range(50)
        )
        session.add_all(
            _message(now, DeliveryStatus.pending, -timedelta(seconds=n)) for n in range(5)
        )
        await session.commit()
    async with autocommit(app) as connection:
        await connection.execute(text("SET enable_seqscan = off"))
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        rows = await driver.fetch(
            "EXPLAIN " + service._CLAIM_ON_THE_DRIVER, now, 20, "w", now + timedelta(minutes=1)
        )
    plan = "\n".join(row[0] for row in rows)
    due = plan.split("CTE due", 1)[1].split("CTE lapsed", 1)[0]
    assert "ix_outbox_messages_due" in due, plan
    assert "Sort" not in due, plan
