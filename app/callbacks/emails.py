"""The call back request email (s.3.2), as a kind of outbox message.

Loaded with the caller's details at the moment of sending: once they are purged the message
cannot be rendered (it becomes dead) and `handoff outbox retry` refuses it.
"""

import uuid
from collections.abc import Mapping
from datetime import datetime
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.validation import format_phone_for_reading
from app.outbox.kinds import EmailKind, Envelope, Refusal
from app.outbox.rendering import CannotRender, RenderedEmail, Renderer
from app.protocol.routes import Body

KIND = "callback_request"

CallbackEmailRecord = tuple[CallbackRequest, CallerDetails | None]


def callback_request_subject(sender: Body, reference: str) -> str:
    return f"Call back request - {sender.reference_label}: {reference}"


def render_callback_request(
    renderer: Renderer,
    callback: CallbackRequest,
    caller: CallerDetails | None,
    *,
    to_address: str,
    message_id: str,
    now: datetime,
) -> RenderedEmail:
    """The email to the receiving body's call back mailbox, as of `now`."""
    if caller is None:
        raise CannotRender(
            "caller_details_purged",
            "The caller's details were purged before the call back request could be sent.",
        )
    sender = renderer.body(callback.from_org)
    receiver = renderer.body(callback.to_org)
    return renderer.message(
        "callback_request",
        {
            "sender": sender,
            "receiver": receiver,
            "reference": callback.sender_reference,
            "name": caller.name,
            "contact_number": format_phone_for_reading(caller.contact_number),
            "provider": caller.provider,
            # HANDOFF_PUBLIC_URL set: one line links to the request's page (its id only: the
            # address carries no personal data). Unset: the protocol's email, exactly.
            "link": f"{renderer.public_url}/callbacks/{callback.id}"
            if renderer.public_url
            else None,
        },
        subject=callback_request_subject(sender, callback.sender_reference),
        to_address=to_address,
        reply_to=sender.callback_mailbox,
        message_id=message_id,
        now=now,
    )


async def _load(
    session: AsyncSession, ids: list[uuid.UUID]
) -> Mapping[uuid.UUID, CallbackEmailRecord]:
    rows = await session.execute(
        select(CallbackRequest, CallerDetails)
        .outerjoin(CallerDetails, CallerDetails.callback_request_id == CallbackRequest.id)
        .where(CallbackRequest.id.in_(ids))
    )
    return {callback.id: (callback, caller) for callback, caller in rows.all()}


def _render(renderer: Renderer, record: CallbackEmailRecord, envelope: Envelope) -> EmailMessage:
    callback, caller = record
    return render_callback_request(
        renderer,
        callback,
        caller,
        to_address=envelope.to_address,
        message_id=envelope.message_id,
        now=envelope.now,
    )


async def _refusal(session: AsyncSession, callback_id: uuid.UUID) -> Refusal | None:
    purged = await session.scalar(
        select(CallbackRequest.personal_data_purged_at).where(CallbackRequest.id == callback_id)
    )
    return Refusal("caller_details_purged", "the caller's details were purged") if purged else None


CALLBACK_REQUEST_EMAIL = EmailKind(name=KIND, load=_load, render=_render, refusal=_refusal)
