"""The call back request email (s.3.2), as a kind of outbox message.

Loaded with the caller's details at the moment of sending: once they are purged the message
cannot be rendered (it becomes dead) and `handoff outbox retry` refuses it.
"""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from email.message import EmailMessage
from typing import Any, NamedTuple, Protocol

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.database import driver_of
from app.core.validation import format_phone_for_reading
from app.outbox.kinds import EmailKind, Envelope, Refusal
from app.outbox.rendering import CannotRender, RenderedEmail, Renderer
from app.protocol.routes import Body

KIND = "callback_request"


class CallbackFields(Protocol):
    """What the email says of the call back request: a `CallbackRequest`, or its columns."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def from_org(self) -> str: ...
    @property
    def to_org(self) -> str: ...
    @property
    def sender_reference(self) -> str: ...


class CallerFields(Protocol):
    """What the email says of the caller: a `CallerDetails`, or its columns."""

    @property
    def name(self) -> str: ...
    @property
    def contact_number(self) -> str: ...
    @property
    def provider(self) -> str: ...


class _Callback(NamedTuple):
    id: uuid.UUID
    from_org: str
    to_org: str
    sender_reference: str


class _Caller(NamedTuple):
    name: str
    contact_number: str
    provider: str


CallbackEmailRecord = tuple[CallbackFields, CallerFields | None]


def callback_request_subject(sender: Body, reference: str) -> str:
    return f"Call back request - {sender.reference_label}: {reference}"


def render_callback_request(
    renderer: Renderer,
    callback: CallbackFields,
    caller: CallerFields | None,
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


# Only the columns the email shows, not the ORM's objects: loading a batch's records is once
# per batch, but building objects for each was a tenth of the worker's time.
_LOAD = (
    select(
        CallbackRequest.id,
        CallbackRequest.from_org,
        CallbackRequest.to_org,
        CallbackRequest.sender_reference,
        CallerDetails.callback_request_id,
        CallerDetails.name,
        CallerDetails.contact_number,
        CallerDetails.provider,
    )
    .outerjoin(CallerDetails, CallerDetails.callback_request_id == CallbackRequest.id)
    .where(CallbackRequest.id.in_(bindparam("ids", expanding=True)))
)


# The same query for PostgreSQL's driver, the ids as one array: what `_load` runs there (once
# per batch, SQLAlchemy's execution layer cost several times the query's round trip in CPU).
_LOAD_ON_THE_DRIVER = (
    f"SELECT {', '.join(f'{c.table.name}.{c.name}' for c in _LOAD.selected_columns)}"
    f" FROM {CallbackRequest.__tablename__} LEFT OUTER JOIN {CallerDetails.__tablename__}"
    f" ON {CallerDetails.__tablename__}.callback_request_id = {CallbackRequest.__tablename__}.id"
    f" WHERE {CallbackRequest.__tablename__}.id = ANY($1::uuid[])"
)


async def _load(
    session: AsyncSession, ids: list[uuid.UUID]
) -> Mapping[uuid.UUID, CallbackEmailRecord]:
    connection = await session.connection()
    rows: Iterable[Sequence[Any]]
    if connection.dialect.name == "postgresql":
        rows = await (await driver_of(connection)).fetch(_LOAD_ON_THE_DRIVER, ids)
    else:
        rows = await connection.execute(_LOAD, {"ids": ids})
    return {
        row[0]: (
            _Callback(*row[:4]),
            _Caller(*row[5:]) if row[4] is not None else None,  # None: purged
        )
        for row in rows
    }


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
