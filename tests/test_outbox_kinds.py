"""Adding a kind of email touches only the package that owns it: a kind defined and registered
here, by this test module (no outbox file knows it), is queued in its record's transaction,
rendered with the outbox's one Jinja environment and policy, and delivered by the real worker
to a real SMTP server; `retry` asks the kind whether it can still be sent; a worker that does
not know a kind leaves its messages for one that does."""

import shutil
import uuid
from collections.abc import Iterator, Mapping
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import FixedClock
from app.core.errors import Conflict
from app.core.settings import Settings
from app.outbox import service as outbox
from app.outbox.kinds import KINDS, EmailKind, Envelope, KindRegistry, Refusal
from app.outbox.models import OutboxMessage
from app.outbox.rendering import Renderer
from app.signposts.models import Signpost
from tests.conftest import Key
from tests.outbox_support import SmtpServer, worker

NOTE = "test_signpost_note"
WITHDRAWN: set[uuid.UUID] = set()  # signposts this kind will no longer send a note about


async def _load(session: AsyncSession, ids: list[uuid.UUID]) -> Mapping[uuid.UUID, Signpost]:
    rows = await session.scalars(select(Signpost).where(Signpost.id.in_(ids)))
    return {signpost.id: signpost for signpost in rows}


def _render(renderer: Renderer, signpost: Signpost, envelope: Envelope) -> EmailMessage:
    sender = renderer.body(signpost.from_org)
    return renderer.message(
        "signpost_note",
        {"sender": sender, "reference": signpost.sender_reference},
        subject=f"Signposted by {sender.short_name}: {signpost.sender_reference}",
        to_address=envelope.to_address,
        reply_to=sender.feedback_mailbox,
        message_id=envelope.message_id,
        now=envelope.now,
    )


async def _refusal(session: AsyncSession, signpost_id: uuid.UUID) -> Refusal | None:
    return Refusal("note_withdrawn", "the note was withdrawn") if signpost_id in WITHDRAWN else None


SIGNPOST_NOTE = EmailKind(name=NOTE, load=_load, render=_render, refusal=_refusal)


@pytest.fixture
def note_kind() -> Iterator[EmailKind]:
    with KINDS.registered(SIGNPOST_NOTE) as kind:
        yield kind


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def templates(settings: Settings, tmp_path: Path) -> Path:
    """The project's templates, and this kind's own beside them."""
    folder = tmp_path / "templates"
    shutil.copytree(settings.email_templates_dir, folder)
    (folder / "signpost_note.txt").write_text(
        "{{ greeting }},\n\n{{ sender.short_name }} signposted a caller to you ({{ reference }}).\n"
    )
    (folder / "signpost_note.html").write_text(
        "<p>{{ greeting }},</p>\n<p>{{ sender.short_name }} signposted a caller ({{ reference }})"
        ".</p>\n"
    )
    return folder


async def _signpost_with_note(client, app, key: Key, clock: FixedClock) -> uuid.UUID:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/v1/signposts", json={"to_org": "cqc", "sender_reference": "LG-5"}, headers=key.headers
    )
    assert response.status_code == 201, response.text
    signpost_id = uuid.UUID(response.json()["id"])
    async with app.state.sessionmaker() as session:
        outbox.enqueue(
            session,
            kind=NOTE,
            subject_id=signpost_id,
            to_address="notes@example.org",
            now=clock.now(),
        )
        await session.commit()
    return signpost_id


async def test_a_kind_registered_by_a_test_module_is_delivered_by_the_real_worker(
    app,
    client,
    settings: Settings,
    clock: FixedClock,
    lgsco_agent: Key,
    smtp_server: SmtpServer,
    templates: Path,
    note_kind: EmailKind,
) -> None:
    signpost_id = await _signpost_with_note(client, app, lgsco_agent, clock)
    smtp = smtp_server.settings(settings, email_templates_dir=templates)

    assert await worker(app, smtp).drain() == {"sent": 1}

    [received] = smtp_server.received
    assert received.rcpt_tos == ["notes@example.org"]
    message = received.message
    assert message["Subject"] == "Signposted by LGSCO: LG-5"
    async with app.state.sessionmaker() as session:
        row = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.subject_id == signpost_id)
        )
    assert row is not None and (row.kind, row.status) == (NOTE, "sent")
    assert message["Message-ID"] == row.message_id
    text = message.get_body(("plain",))
    assert text is not None
    assert "signposted a caller to you (LG-5)" in text.get_content()  # type: ignore[attr-defined]


async def test_retry_asks_the_kind_whether_it_can_still_be_sent(
    app, client, settings: Settings, clock: FixedClock, lgsco_agent: Key, note_kind: EmailKind
) -> None:
    signpost_id = await _signpost_with_note(client, app, lgsco_agent, clock)
    WITHDRAWN.add(signpost_id)
    try:
        async with app.state.sessionmaker() as session:
            with pytest.raises(Conflict) as refused:
                await outbox.retry(session, signpost_id, now=clock.now())
    finally:
        WITHDRAWN.discard(signpost_id)
    assert refused.value.code == "note_withdrawn"
    assert "the note was withdrawn" in refused.value.detail


async def test_a_worker_that_does_not_know_a_kind_leaves_its_message_for_another_try(
    app, client, settings: Settings, clock: FixedClock, lgsco_agent: Key, note_kind: EmailKind
) -> None:
    await _signpost_with_note(client, app, lgsco_agent, clock)
    unaware = worker(app, settings)
    unaware.kinds = KindRegistry()  # e.g. an older version of the worker, still running

    assert await unaware.drain() == {"retrying": 1}
    async with app.state.sessionmaker() as session:
        [row] = (await session.scalars(select(OutboxMessage))).all()
    assert (row.status, row.last_error_code) == ("retrying", "unknown_kind")


def test_a_second_kind_under_a_name_already_taken_is_refused(note_kind: EmailKind) -> None:
    KINDS.register(note_kind)  # the same kind again: harmless
    other = EmailKind(name=NOTE, load=_load, render=_render)
    with pytest.raises(ValueError, match="already registered"):
        KINDS.register(other)
