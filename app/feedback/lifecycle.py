"""The answer to a feedback: acknowledged, then responded to, by the body it is about.

States: `submitted` (sent; its email queued) -> `acknowledged` (the receiving team has seen
it) -> `responded` (closed: the remedial action taken and whether it was a training issue,
s.6.2). A responded feedback never changes again.

Who may do what: the body it is about (`about_org`) reads it, acknowledges it and responds;
the body that sent it (`from_org`) reads it, with its state and response, and may not answer
its own; any other body is told it does not exist (core.access, `also=("about_org",)`).

Every change is one conditional UPDATE on the feedback's `version`, as for a call back
request (app/callbacks/lifecycle.py), so of two team members acting at once exactly one wins
and the other's change is decided again on what the winner left; on PostgreSQL the row is
also read FOR UPDATE. None of the functions commits.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.auth import Principal
from app.core.errors import Conflict, Forbidden
from app.core.months import LONDON
from app.core.versioned import (
    CHANGE_TRIES,
    concurrent_change,
    load_for_change,
    save_if_unchanged,
)
from app.core.workdays import working_days_between
from app.feedback.models import Feedback
from app.protocol.context import RequestContext


class FeedbackState(StrEnum):
    submitted = "submitted"
    acknowledged = "acknowledged"
    responded = "responded"  # closed


class Direction(StrEnum):
    incoming = "incoming"  # about the caller's body
    outgoing = "outgoing"  # sent by it


# The one access rule (core.access), widened: a feedback is also the body's it is about.
ABOUT = ("about_org",)
NAME = "feedback"


def is_receiving(principal: Principal, feedback: Feedback) -> bool:
    """Whether the principal, who may see the feedback, is of the body it is about."""
    return principal.body == feedback.about_org and principal.body != feedback.from_org


def _receiving_only(principal: Principal, feedback: Feedback) -> None:
    if not is_receiving(principal, feedback):
        raise Forbidden(
            "feedback_receiving_body_only",
            "Only the body the feedback is about can acknowledge or respond to it.",
        )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _check_open(feedback: Feedback) -> None:
    if feedback.state == FeedbackState.responded:
        raise Conflict(
            "feedback_closed",
            "The feedback has been responded to and cannot change again.",
            extra={"responded_at": _iso(feedback.responded_at)},
        )


async def _load(
    session: AsyncSession, principal: Principal, feedback_id: uuid.UUID, *, again: bool = False
) -> Feedback:
    return await load_for_change(
        session, Feedback, feedback_id, principal.body, name=NAME, also=ABOUT, again=again
    )


def _audit(
    session: AsyncSession,
    principal: Principal,
    action: audit.AuditAction,
    feedback: Feedback,
    now: datetime,
) -> None:
    audit.record(
        session,
        principal,
        action,
        audit.RecordType.feedback,
        feedback.id,
        org=principal.body,
        now=now,
    )


def _acknowledgement(principal: Principal, now: datetime) -> dict[str, Any]:
    return {
        "state": FeedbackState.acknowledged.value,
        "acknowledged_at": now,
        "acknowledged_by_key_id": principal.key_id,
    }


async def acknowledge(
    session: AsyncSession, principal: Principal, ctx: RequestContext, feedback_id: uuid.UUID
) -> Feedback:
    """The body the feedback is about says it has seen it (409
    `feedback_already_acknowledged` the second time, with when)."""
    for n in range(CHANGE_TRIES):
        feedback = await _load(session, principal, feedback_id, again=n > 0)
        _receiving_only(principal, feedback)
        _check_open(feedback)
        if feedback.state == FeedbackState.acknowledged:
            raise Conflict(
                "feedback_already_acknowledged",
                f"The feedback was already acknowledged at {_iso(feedback.acknowledged_at)}.",
                extra={"acknowledged_at": _iso(feedback.acknowledged_at)},
            )
        if await save_if_unchanged(session, feedback, **_acknowledgement(principal, ctx.now)):
            _audit(session, principal, audit.AuditAction.acknowledge, feedback, ctx.now)
            return feedback
    raise concurrent_change()


def response_working_days(submitted_at: datetime, responded_at: datetime) -> int:
    """England and Wales working days from the UK date it was submitted to the UK date it
    was answered (answered the same day: 0), as the monthly report counts them."""
    return working_days_between(
        submitted_at.astimezone(LONDON).date(), responded_at.astimezone(LONDON).date()
    )


async def respond(
    session: AsyncSession,
    principal: Principal,
    ctx: RequestContext,
    feedback_id: uuid.UUID,
    *,
    remedial_action: str,
    training_issue: bool,
) -> Feedback:
    """The body the feedback is about records what it did about it, which closes it; an
    unacknowledged feedback is acknowledged by the same step."""
    for n in range(CHANGE_TRIES):
        feedback = await _load(session, principal, feedback_id, again=n > 0)
        _receiving_only(principal, feedback)
        _check_open(feedback)
        values: dict[str, Any] = {}
        actions = [audit.AuditAction.respond]
        if feedback.state == FeedbackState.submitted:
            values |= _acknowledgement(principal, ctx.now)
            actions.insert(0, audit.AuditAction.acknowledge)
        values |= {
            "state": FeedbackState.responded.value,
            "responded_at": ctx.now,
            "responded_by_key_id": principal.key_id,
            "remedial_action": remedial_action,
            "training_issue": training_issue,
            "response_working_days": response_working_days(feedback.submitted_at, ctx.now),
        }
        if await save_if_unchanged(session, feedback, **values):
            for action in actions:
                _audit(session, principal, action, feedback, ctx.now)
            return feedback
    raise concurrent_change()
