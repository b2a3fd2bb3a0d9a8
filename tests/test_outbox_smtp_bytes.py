"""A rendered message sent over SMTP is written without the email package (`smtp_bytes`), and
the bytes are exactly those aiosmtplib's `send_message` would send (the email package's
generator under each SMTP policy), for any caller details, in both directions, for each kind."""

import copy
import re
from datetime import UTC, datetime
from email import policy
from pathlib import Path

import pytest
from aiosmtplib.email import flatten_message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.callbacks.emails import render_callback_request
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.settings import Settings
from app.feedback.emails import render_feedback
from app.feedback.models import Feedback
from app.outbox.rendering import RenderedEmail, Renderer
from app.protocol.routes import load_table

ROUTES = load_table()
RENDERER = Renderer(
    Settings(_env_file=None).email_templates_dir,  # type: ignore[call-arg]
    "handoff@example.org",
    ROUTES,
)
NOW = datetime(2026, 11, 10, 10, 0, 3, tzinfo=UTC)
# (utf8, cte_type) as aiosmtplib's send_message chooses them, and the policy it flattens with.
SENDING = [
    ((False, "8bit"), policy.SMTP),
    ((True, "8bit"), policy.SMTPUTF8),
    ((False, "7bit"), policy.SMTP.clone(cte_type="7bit")),
    ((True, "7bit"), policy.SMTPUTF8.clone(cte_type="7bit")),
]
# What a caller or an adviser may type: any printable text, accents, other scripts, long runs.
TYPED = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=150).filter(
    str.strip
)


def _callback(sender: str, name: str, provider: str) -> RenderedEmail:
    receiver = "lgsco" if sender == "cqc" else "cqc"
    return render_callback_request(
        RENDERER,
        CallbackRequest(from_org=sender, to_org=receiver, sender_reference="REF-1001"),
        CallerDetails(name=name, contact_number="+447911123456", provider=provider),
        to_address=ROUTES.body(receiver).callback_mailbox,  # type: ignore[union-attr]
        message_id="<a1@example.org>",
        now=NOW,
    )


def _feedback(sender: str, reason: str) -> RenderedEmail:
    receiver = "lgsco" if sender == "cqc" else "cqc"
    message = render_feedback(
        RENDERER,
        Feedback(
            from_org=sender,
            about_org=receiver,
            case_references=["CAS-1"],
            reason_for_contact=reason,
            names_and_times="J. Smith at 10:40",
            correct_advice="Ask the LGSCO.",
            suggested_action=reason,
            occurred_at=NOW,
        ),
        to_address=ROUTES.body(receiver).callback_mailbox,  # type: ignore[union-attr]
        message_id="<f1@example.org>",
        now=NOW,
    )
    assert isinstance(message, RenderedEmail)
    return message


def _as_generated(make: object, written: bytes, utf8: bool, cte_type: str) -> bytes:
    """The same message built by the email package and flattened as aiosmtplib does, with
    the boundary `written` drew (it is random)."""
    boundary = re.search(rb'boundary="([^"]+)"', written)
    assert boundary is not None
    message = make()  # type: ignore[operator]
    message.set_boundary(boundary.group(1).decode("ascii"))
    return flatten_message(message, utf8=utf8, cte_type=cte_type)


@pytest.mark.database_independent
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=TYPED, provider=TYPED, reason=TYPED, sender=st.sampled_from(["cqc", "lgsco"]))
def test_the_bytes_written_are_the_generators(
    name: str, provider: str, reason: str, sender: str
) -> None:
    for make in (lambda: _callback(sender, name, provider), lambda: _feedback(sender, reason)):
        for (utf8, cte_type), sending_policy in SENDING:
            written = make().smtp_bytes(sending_policy)
            if written is None:  # a part that goes as 8bit: the generator writes it
                continue
            assert written == _as_generated(make, written, utf8, cte_type)


@pytest.mark.database_independent
@settings(max_examples=200, deadline=None)
@given(
    subject=st.one_of(
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90),
        st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n")),
        st.sampled_from(["=?utf-8?q?Hello?=", " Leading", "Trailing ", "a  b", "", "Zoë"]),
    ),
    local=st.one_of(st.uuids().map(str), st.text(min_size=1, max_size=80)),
    domain=st.sampled_from(["example.org", "handoff.localhost", "x" * 70]),
)
def test_subjects_and_message_ids_are_written_as_the_generator_writes_them(
    subject: str, local: str, domain: str
) -> None:
    """Any subject or Message-ID with no line break, short or long, plain or not."""
    message_id = f"<{local}@{domain}>"
    if len(f"{subject}{message_id}".splitlines()) > 1:
        return  # refused when rendered: see test_outbox_rendering_policy

    def make() -> RenderedEmail:
        return RENDERER.message(
            "callback_request",
            {
                "sender": ROUTES.body("cqc"),
                "receiver": ROUTES.body("lgsco"),
                "reference": "REF-1",
                "name": "Ada",
                "contact_number": "07911 123456",
                "provider": "Sunrise",
                "link": None,
            },
            subject=subject,
            to_address="intake@example.org",
            reply_to="concerns@example.org",
            message_id=message_id,
            now=NOW,
        )

    for (utf8, cte_type), sending_policy in SENDING:
        try:
            expected: bytes | type[Exception] = flatten_message(
                make(), utf8=utf8, cte_type=cte_type
            )
        except Exception as error:  # e.g. a Message-ID the email package cannot parse
            expected = type(error)
        if isinstance(expected, type):
            with pytest.raises(expected):
                make().smtp_bytes(sending_policy)
            continue
        written = make().smtp_bytes(sending_policy)
        assert written is not None
        assert written == _as_generated(make, written, utf8, cte_type)


@pytest.mark.database_independent
def test_the_usual_message_is_written_without_the_email_package() -> None:
    """An ASCII or accented caller's email (its lines are long: quoted-printable) is written,
    and its header folds and boundary line are the generator's."""
    for name in ["Ada Lovelace", "Zoë Ünal", "x" * 200]:
        written = _callback("cqc", name, "Sunrise Care Home").smtp_bytes(policy.SMTP)
        assert written is not None
        assert b"Content-Type: multipart/alternative;\r\n boundary=" in written
        assert written.endswith(b"--\r\n")
        expected = _as_generated(
            lambda n=name: _callback("cqc", n, "Sunrise"), written, False, "8bit"
        )
        assert written.replace(b"Sunrise Care Home", b"Sunrise") == expected


@pytest.mark.database_independent
def test_a_message_used_as_an_email_message_is_left_to_the_email_package() -> None:
    """Once read or changed, it is an ordinary EmailMessage: its bytes come from the generator
    (with the change), never from what was rendered."""
    message = _callback("cqc", "Ada Lovelace", "Sunrise Care Home")
    twin = copy.copy(message)
    assert twin.smtp_bytes(policy.SMTP) is not None
    assert message["Subject"] == "Call back request - CQC Reference: REF-1001"
    message["X-Extra"] = "1"
    assert message.smtp_bytes(policy.SMTP) is None
    assert b"X-Extra: 1\r\n" in flatten_message(message)
    assert b"X-Extra" not in flatten_message(twin)  # the copy is a message of its own
    assert message.email_message() is message

    unbuilt = _callback("cqc", "Ada Lovelace", "Sunrise Care Home")
    unbuilt.preamble = "Set before it was built."
    assert unbuilt.preamble == "Set before it was built."  # building it kept what was set
    assert unbuilt.smtp_bytes(policy.SMTP) is None
    assert flatten_message(unbuilt).count(b"Set before it was built.") == 1


@pytest.mark.database_independent
def test_short_lines_go_as_7bit_or_are_left_to_the_generator_as_8bit(tmp_path: Path) -> None:
    """A template of short lines (an operator's own): ASCII text is written (7bit), text that is
    not ASCII (it would go as 8bit, or be re-encoded for a 7bit server) is the generator's."""
    folder = tmp_path
    (folder / "short.txt").write_text("Hello {{ name }}\n", encoding="utf-8")
    (folder / "short.html").write_text("<p>Hello {{ name }}</p>\n", encoding="utf-8")
    renderer = Renderer(folder, "handoff@example.org", ROUTES)

    def make(name: str) -> RenderedEmail:
        return renderer.message(
            "short",
            {"name": name},
            subject="Hello",
            to_address="a@example.org",
            reply_to="b@example.org",
            message_id="<s1@example.org>",
            now=NOW,
        )

    for (utf8, cte_type), sending_policy in SENDING:
        written = make("Ada").smtp_bytes(sending_policy)
        assert written is not None and b"Content-Transfer-Encoding: 7bit" in written
        assert written == _as_generated(lambda: make("Ada"), written, utf8, cte_type)
        assert make("Zoë").smtp_bytes(sending_policy) is None
