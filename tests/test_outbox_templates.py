"""The protocol's emails, as the receiving mailbox sees them: approved copies for both directions,
the greeting by UK time, headers that carry no caller data, and nothing sent once the caller's
details are purged."""

import shutil
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from markupsafe import escape
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import delete

from app.callbacks.emails import render_callback_request
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.clock import FixedClock
from app.core.settings import Settings
from app.core.validation import Reference, format_phone_for_reading
from app.feedback.emails import render_feedback
from app.feedback.models import Feedback
from app.feedback.schemas import FeedbackCreate
from app.outbox.backends import FileBackend
from app.outbox.rendering import Renderer, greeting
from app.protocol.routes import RouteTable, load_table
from app.transfers.schemas import Caller
from tests.conftest import Key
from tests.helpers import failure, to_lgsco
from tests.outbox_support import (
    approval_copy,
    assert_approved,
    eml_files,
    parse,
    request_callback,
    worker,
)

FEEDBACK = {
    "case_references": ["CAS-1234/56", "LG-77"],
    "reason_for_contact": "The caller wanted to complain about fees at her mother's care home.",
    "names_and_times": "Advised by J. Smith at 10:40;\ntransferred at 10:52.",
    "correct_advice": "Fees complaints go to the LGSCO once the provider's own process ends.",
    "suggested_action": "Refresh the team's guidance on fees complaints.",
}


async def _drain_to_files(app, settings: Settings) -> list[EmailMessage]:  # type: ignore[no-untyped-def]
    outcomes = await worker(app, settings).drain()
    assert set(outcomes) == {"sent"}, outcomes
    return [parse(p.read_bytes()) for p in eml_files(settings.email_dir)]


async def test_cqc_call_back_request_matches_the_approved_copy_of_section_3_2(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key
) -> None:
    callback_id = await request_callback(client, cqc_agent, clock)
    clock.set(datetime(2026, 11, 10, 11, 59, 59, tzinfo=UTC))  # 11:59:59 GMT: still morning

    [message] = await _drain_to_files(app, settings)

    text, html = approval_copy(message)
    assert_approved("callback_request_cqc_to_lgsco.txt", text)
    assert_approved("callback_request_cqc_to_lgsco.html", html)
    callback = (await client.get(f"/v1/callbacks/{callback_id}", headers=cqc_agent.headers)).json()
    assert callback["delivery"] == {
        "status": "sent",
        "attempts": 1,
        "last_error_code": None,
        "sent_at": "2026-11-10T11:59:59Z",
    }


async def test_lgsco_call_back_request_matches_the_approved_copy_of_section_5_2_1(
    client, app, settings: Settings, clock: FixedClock, lgsco_agent: Key
) -> None:
    await request_callback(
        client,
        lgsco_agent,
        clock,
        caller={
            "name": "Mary Seacole",
            "contact_number": "+33 1 42 68 53 00",
            "provider": "Maison Bleue",
        },
    )
    clock.set(datetime(2026, 11, 10, 12, 0, tzinfo=UTC))  # 12:00 GMT: afternoon

    [message] = await _drain_to_files(app, settings)

    assert message["To"] == "concerns@cqc.org.uk"
    text, html = approval_copy(message)
    assert_approved("callback_request_lgsco_to_cqc.txt", text)
    assert_approved("callback_request_lgsco_to_cqc.html", html)


@pytest.mark.parametrize(
    ("sender", "about", "occurred_at"),
    [("cqc", "lgsco", "2026-11-09T10:40:00Z"), ("lgsco", "cqc", None)],
)
async def test_feedback_email_carries_the_fields_of_section_6_2(
    client,
    app,
    settings: Settings,
    key_factory,
    sender: str,
    about: str,
    occurred_at: str | None,
) -> None:
    key = await key_factory.make(sender, "agent")
    body = {"about_org": about, **FEEDBACK}
    if occurred_at:
        body["occurred_at"] = occurred_at
    response = await client.post("/v1/feedback", json=body, headers=key.headers)
    assert response.status_code == 201, response.text

    [message] = await _drain_to_files(app, settings)

    text, html = approval_copy(message)
    assert_approved(f"feedback_about_{about}.txt", text)
    assert_approved(f"feedback_about_{about}.html", html)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (datetime(2026, 1, 15, 11, 59, 59, tzinfo=UTC), "Good Morning"),  # GMT
        (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "Good Afternoon"),
        (datetime(2026, 7, 1, 10, 59, 59, tzinfo=UTC), "Good Morning"),  # 11:59:59 BST
        (datetime(2026, 7, 1, 11, 0, tzinfo=UTC), "Good Afternoon"),  # 12:00 BST
        (datetime(2026, 7, 1, 23, 30, tzinfo=UTC), "Good Morning"),  # 00:30 BST next day
    ],
)
def test_greeting_follows_the_clock_in_london(moment: datetime, expected: str) -> None:
    assert greeting(moment) == expected


async def test_greeting_is_taken_when_the_email_is_sent_not_when_it_was_requested(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key
) -> None:
    await request_callback(client, cqc_agent, clock)  # requested at 10:00
    clock.set(datetime(2026, 11, 10, 13, 0, tzinfo=UTC))  # the mail server was down till 13:00

    [message] = await _drain_to_files(app, settings)

    text, _ = approval_copy(message)
    assert "Good Afternoon Intake Team," in text


async def test_purged_caller_details_make_the_message_dead_not_sent(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key
) -> None:
    callback_id = await request_callback(client, cqc_agent, clock)
    async with app.state.sessionmaker() as session:
        await session.execute(
            delete(CallerDetails).where(CallerDetails.callback_request_id == callback_id)
        )
        callback = await session.get(CallbackRequest, callback_id)
        callback.personal_data_purged_at = clock.now()
        await session.commit()

    outcomes = await worker(app, settings).drain()

    assert outcomes == {"dead": 1}
    assert not eml_files(settings.email_dir)
    got = (await client.get(f"/v1/callbacks/{callback_id}", headers=cqc_agent.headers)).json()
    assert got["caller"] is None
    assert got["delivery"]["status"] == "dead"
    assert got["delivery"]["last_error_code"] == "caller_details_purged"
    assert got["delivery"]["sent_at"] is None


@pytest.mark.parametrize(
    "bad",
    ["Ada\r\nBcc: x@example.org", "Ada\n", "Ada\u2028", "=?utf-8?q?Ada?=", "Ada\x00", "Ada\x1b[2J"],
)
async def test_caller_text_that_could_break_a_message_is_refused_at_the_api(
    client, clock: FixedClock, cqc_agent: Key, bad: str
) -> None:
    caller = {"name": "Ada", "contact_number": "07911 123456", "provider": bad}
    body = to_lgsco(clock.now(), outcome={"status": "failed", **failure(caller=caller)})
    response = await client.post("/v1/transfers", json=body, headers=cqc_agent.headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_characters"


# ---- Property: whatever text the API accepts, the message's headers are exactly ours. ----

EXPECTED_HEADERS = {
    "From",
    "To",
    "Reply-To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
}
NASTY = [
    "\r",
    "\n",
    "\r\n",
    "\u2028",
    "\u2029",
    "\x85",
    "\x00",
    "\t",
    "\x0b",
    "=?",
    "?=",
    ":",
    "Bcc: x@example.org",
    "<",
    ">",
    "&",
    '"',
    "=",
    ".",
    "\u00e9",
    "\U0001f600",
    " ",
]
# At most 90 characters, under every field's length limit, so refusals are about characters.
caller_text = st.lists(st.sampled_from(NASTY) | st.text(max_size=8), max_size=5).map("".join)
ROUTES: RouteTable = load_table()
RENDERER = Renderer(Settings(_env_file=None).email_templates_dir, "handoff@example.org", ROUTES)  # type: ignore[call-arg]
NOW = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)


def _forbidden(value: str, *, allow_newlines: bool) -> bool:
    """A value with any of these must be refused (the validator refuses every control too)."""
    value = value.replace("\r\n", "\n") if allow_newlines else value
    if "=?" in value:
        return True
    controls = "\r\u2028\u2029\x85\x00\t\x0b" + ("" if allow_newlines else "\n")
    return any(ch in value for ch in controls)


def _accepts(adapter_or_model, value):  # type: ignore[no-untyped-def]
    try:
        return adapter_or_model(value), None
    except ValidationError as exc:
        return None, {e["type"] for e in exc.errors()}


def _assert_headers_are_exactly(message: EmailMessage, expected: dict[str, str]) -> EmailMessage:
    parsed = parse(message.as_bytes())
    assert set(parsed.keys()) == EXPECTED_HEADERS
    assert len(parsed.keys()) == len(EXPECTED_HEADERS)  # no header twice
    for name, value in expected.items():
        # RFC 5322 2.2.3: the whitespace after the colon is not part of the value, even when
        # the whole value was folded onto the next line (Python does that for a subject of
        # 70 to 77 characters, and its parser then keeps the fold's leading space).
        assert str(parsed[name]).lstrip(" ") == value
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    return parsed


@pytest.mark.database_independent
@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=caller_text,
    provider=caller_text,
    reference=st.sampled_from(["CQC-1001", "LG/1", "x"]) | caller_text,
    direction=st.sampled_from([("cqc", "lgsco"), ("lgsco", "cqc")]),
)
def test_every_accepted_caller_yields_a_message_with_exactly_the_expected_headers(
    name: str, provider: str, reference: str, direction: tuple[str, str]
) -> None:
    caller, errors = _accepts(
        lambda v: Caller(name=v[0], contact_number="07911 123456", provider=v[1]),
        (name, provider),
    )
    ref, ref_errors = _accepts(TypeAdapter(Reference).validate_python, reference)
    if any(_forbidden(value, allow_newlines=False) for value in (name, provider)):
        assert caller is None and "invalid_characters" in errors
    if caller is None or ref is None:
        # A reference with a character no text accepts is refused for that, like any text.
        assert ref is not None or ref_errors in ({"invalid_reference"}, {"invalid_characters"})
        return

    sender, receiver = (ROUTES.body(o) for o in direction)
    assert sender and receiver
    message_id = f"<{uuid.uuid4()}@example.org>"
    message = render_callback_request(
        RENDERER,
        CallbackRequest(from_org=direction[0], to_org=direction[1], sender_reference=ref),
        CallerDetails(
            name=caller.name, contact_number=caller.contact_number, provider=caller.provider
        ),
        to_address=receiver.callback_mailbox,
        message_id=message_id,
        now=NOW,
    )

    parsed = _assert_headers_are_exactly(
        message,
        {
            "From": "handoff@example.org",
            "To": receiver.callback_mailbox,
            "Reply-To": sender.callback_mailbox,
            "Subject": f"Call back request - {sender.reference_label}: {ref}",
            "Message-ID": message_id,
            "Date": "Tue, 10 Nov 2026 10:00:00 +0000",
        },
    )
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f"\nName: {caller.name}\n" in text
    assert f"\n{sender.provider_label}: {caller.provider}\n" in text
    assert f"\nContact number: {format_phone_for_reading(caller.contact_number)}\n" in text
    assert f"<p>Name: {escape(caller.name)}</p>" in html
    assert f"<p>{sender.provider_label}: {escape(caller.provider)}</p>" in html


long_text = st.lists(st.sampled_from([*NASTY, "\n\n"]) | st.text(max_size=20), max_size=10).map(
    "".join
)


@pytest.mark.database_independent
@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reason=long_text, names=long_text, reference=st.sampled_from(["CAS-1", "a/b"]) | caller_text)
@example(reason="r", names="n", reference="CAS-123456")  # a 71-character subject, folded whole
def test_every_accepted_feedback_yields_a_message_with_exactly_the_expected_headers(
    reason: str, names: str, reference: str
) -> None:
    body, errors = _accepts(
        lambda v: FeedbackCreate(
            about_org="lgsco",
            case_references=[v[2]],
            reason_for_contact=v[0],
            names_and_times=v[1],
            correct_advice="Send fees complaints to the LGSCO.",
            suggested_action="None.",
        ),
        (reason, names, reference),
    )
    if any(_forbidden(value, allow_newlines=True) for value in (reason, names)):
        assert body is None and "invalid_characters" in errors
    if body is None:
        assert errors
        return

    message = render_feedback(
        RENDERER,
        Feedback(
            from_org="cqc",
            about_org="lgsco",
            case_references=body.case_references,
            reason_for_contact=body.reason_for_contact,
            names_and_times=body.names_and_times,
            correct_advice=body.correct_advice,
            suggested_action=body.suggested_action,
            occurred_at=None,
        ),
        to_address="intakemanagers@lgo.org.uk",
        message_id="<fixed@example.org>",
        now=NOW,
    )

    parsed = _assert_headers_are_exactly(
        message,
        {
            "To": "intakemanagers@lgo.org.uk",
            "Subject": "Feedback from CQC on a misdirected call or incorrect advice: "
            + body.case_references[0],
        },
    )
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f"Reason for contacting:\n{body.reason_for_contact}\n" in text
    assert f"Names and times:\n{body.names_and_times}\n" in text


def test_file_backend_names_each_message_by_its_stable_message_id(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Message-ID"] = "<0f9c7c9e-2f55-4b47-9a53-0d2b8e6a1e01@example.org>"
    path = FileBackend(tmp_path).path_for(message)
    assert path == tmp_path / "0f9c7c9e-2f55-4b47-9a53-0d2b8e6a1e01.eml"


async def test_a_template_that_fails_to_render_is_retried_not_lost(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key, tmp_path: Path
) -> None:
    broken = tmp_path / "templates"
    shutil.copytree(settings.email_templates_dir, broken)
    (broken / "callback_request.txt").write_text("{{ no_such_value }}\n", encoding="utf-8")
    callback_id = await request_callback(client, cqc_agent, clock)

    outcomes = await worker(
        app, settings.model_copy(update={"email_templates_dir": broken})
    ).drain()

    assert outcomes == {"retrying": 1}
    got = (await client.get(f"/v1/callbacks/{callback_id}", headers=cqc_agent.headers)).json()
    assert (got["delivery"]["status"], got["delivery"]["last_error_code"]) == (
        "retrying",
        "render_failed",
    )
    clock.advance(60)
    assert await worker(app, settings).drain() == {"sent": 1}, "sent once the template is fixed"
