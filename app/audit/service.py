"""The audit trail: one row per create, publish, key change and purge, written in the same
transaction as the change (added to the caller's session, never committed here)."""

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.core.access import visible_to
from app.core.auth import Principal
from app.core.pagination import newest_first, split_page


class ActorKind(StrEnum):
    key = "key"  # an API key (or a team leader signed in to the web pages with one)
    cli = "cli"  # an operator at the `handoff` command line
    system = "system"  # the service on its own schedule (the worker's purge, no-outcome close)


class AuditAction(StrEnum):
    create = "create"
    publish = "publish"
    revoke = "revoke"
    purge = "purge"
    # A call back request's life (app/callbacks/lifecycle.py).
    acknowledge = "acknowledge"
    attempt = "attempt"
    close = "close"
    return_ = "return"
    withdraw = "withdraw"
    # A transfer's ending (app/transfers): the worker closing a forgotten one, and the adviser's
    # true outcome recorded over that later.
    no_outcome = "no_outcome"
    replace_outcome = "replace_outcome"
    # A feedback's answer (app/feedback/lifecycle.py); `acknowledge` as above.
    respond = "respond"
    # A body's signature of the monthly report (app/reports/signing.py).
    sign = "sign"


class RecordType(StrEnum):
    transfer = "transfer"
    callback_request = "callback_request"
    signpost = "signpost"
    feedback = "feedback"
    report_publication = "report_publication"
    api_key = "api_key"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    key_id: uuid.UUID | None = None

    @classmethod
    def of(cls, principal: Principal) -> "Actor":
        return cls(ActorKind.key, principal.key_id)


CLI = Actor(ActorKind.cli)
SYSTEM = Actor(ActorKind.system)


def new_event(
    actor: Actor,
    action: AuditAction,
    record_type: RecordType,
    record_id: uuid.UUID,
    *,
    org: str,
    now: datetime,
) -> AuditEvent:
    """An audit row, not yet in any session (for the one-statement insert of a failed transfer)."""
    return AuditEvent(
        id=uuid.uuid4(),
        org=org,
        actor=actor.kind.value,
        actor_key_id=actor.key_id,
        action=action.value,
        record_type=record_type.value,
        record_id=record_id,
        at=now,
    )


def record(
    session: AsyncSession,
    actor: Actor | Principal,
    action: AuditAction,
    record_type: RecordType,
    record_id: uuid.UUID,
    *,
    org: str,
    now: datetime,
) -> AuditEvent:
    """Add an audit row to the session: it is written with the change, or not at all."""
    who = Actor.of(actor) if isinstance(actor, Principal) else actor
    event = new_event(who, action, record_type, record_id, org=org, now=now)
    session.add(event)
    return event


def created_event(
    principal: Principal, record_type: RecordType, record_id: uuid.UUID, now: datetime
) -> AuditEvent:
    """The row for a record that `principal` created for its own body, not yet stored."""
    return new_event(
        Actor.of(principal), AuditAction.create, record_type, record_id, org=principal.body, now=now
    )


def created(
    session: AsyncSession,
    principal: Principal,
    record_type: RecordType,
    record_id: uuid.UUID,
    now: datetime,
) -> AuditEvent:
    """Add the row for a record that `principal` created for its own body."""
    event = created_event(principal, record_type, record_id, now)
    session.add(event)
    return event


async def list_events(
    session: AsyncSession,
    org: str,
    *,
    action: AuditAction | None,
    record_type: RecordType | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditEvent], str | None]:
    """The body's audit rows, newest first, a page at a time."""
    query = select(AuditEvent).where(visible_to(AuditEvent, org, owner="org"))
    if action is not None:
        query = query.where(AuditEvent.action == action.value)
    if record_type is not None:
        query = query.where(AuditEvent.record_type == record_type.value)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    query = newest_first(query, AuditEvent.at, AuditEvent.id, cursor, limit)
    rows = list((await session.scalars(query)).all())
    return split_page(rows, limit, lambda event: (event.at, event.id))
