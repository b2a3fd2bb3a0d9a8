"""The feedback email (s.6.2), as a kind of outbox message."""

import uuid
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.months import LONDON
from app.feedback.models import Feedback
from app.outbox.kinds import EmailKind, Envelope
from app.outbox.rendering import Renderer
from app.protocol.routes import Body

KIND = "feedback"


def feedback_subject(sender: Body, case_references: list[str]) -> str:
    return (
        f"Feedback from {sender.short_name} on a misdirected call or incorrect advice: "
        + ", ".join(case_references)
    )


def render_feedback(
    renderer: Renderer, feedback: Feedback, *, to_address: str, message_id: str, now: datetime
) -> EmailMessage:
    """The email to the body the feedback is about, as of `now`."""
    sender = renderer.body(feedback.from_org)
    about = renderer.body(feedback.about_org)
    occurred = "not given"
    if feedback.occurred_at is not None:
        local = feedback.occurred_at.astimezone(LONDON)
        occurred = f"{local:%A} {local.day} {local:%B %Y, %H:%M} (UK time)"
    return renderer.message(
        "feedback",
        {
            "sender": sender,
            "about": about,
            "case_references": feedback.case_references,
            "occurred": occurred,
            "reason_for_contact": feedback.reason_for_contact,
            "names_and_times": feedback.names_and_times,
            "correct_advice": feedback.correct_advice,
            "suggested_action": feedback.suggested_action,
        },
        subject=feedback_subject(sender, feedback.case_references),
        to_address=to_address,
        reply_to=sender.feedback_mailbox,
        message_id=message_id,
        now=now,
    )


async def _load(session: AsyncSession, ids: list[uuid.UUID]) -> Mapping[uuid.UUID, Feedback]:
    return {f.id: f for f in await session.scalars(select(Feedback).where(Feedback.id.in_(ids)))}


def _render(renderer: Renderer, feedback: Feedback, envelope: Envelope) -> EmailMessage:
    return render_feedback(
        renderer,
        feedback,
        to_address=envelope.to_address,
        message_id=envelope.message_id,
        now=envelope.now,
    )


FEEDBACK_EMAIL = EmailKind(name=KIND, load=_load, render=_render)
