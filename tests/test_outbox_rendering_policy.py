"""The renderer's header registry (classes made once, header objects reused per value) changes
nothing a receiver sees: the same bytes as the email package's default policy, and a line
break in a header value is still refused."""

from datetime import UTC, datetime
from email import policy

import pytest

import app.outbox.rendering as rendering
from app.callbacks.emails import render_callback_request
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.settings import Settings
from app.feedback.emails import render_feedback
from app.feedback.models import Feedback
from app.protocol.routes import load_table

ROUTES = load_table()
NOW = datetime(2026, 11, 10, 10, 0, 3, tzinfo=UTC)


def _wire(
    monkeypatch: pytest.MonkeyPatch,
    header_policy: policy.EmailPolicy,
    sending_policy: policy.EmailPolicy | None = None,
) -> list[bytes]:
    """Both directions of both emails, with ASCII, accented and over-long values, as sent
    (flattened with `sending_policy`, or the message's own with CRLF line ends)."""
    monkeypatch.setattr(rendering, "POLICY", header_policy)
    renderer = rendering.Renderer(
        Settings(_env_file=None).email_templates_dir,  # type: ignore[call-arg]
        "handoff@example.org",
        ROUTES,
    )
    messages = []
    for sender, receiver in [("cqc", "lgsco"), ("lgsco", "cqc")]:
        mailbox = ROUTES.body(receiver).callback_mailbox  # type: ignore[union-attr]
        for name in ["Ada Lovelace", "Zoë Ünal", "x" * 120]:
            messages.append(
                render_callback_request(
                    renderer,
                    CallbackRequest(
                        from_org=sender, to_org=receiver, sender_reference="REF/" + "9" * 60
                    ),
                    CallerDetails(
                        name=name, contact_number="+447911123456", provider="Maison é " * 20
                    ),
                    to_address=mailbox,
                    message_id="<a1@example.org>",
                    now=NOW,
                )
            )
        messages.append(
            render_feedback(
                renderer,
                Feedback(
                    from_org=sender,
                    about_org=receiver,
                    case_references=["CAS-1", "LG-2"],
                    reason_for_contact="Fees é " * 40,
                    names_and_times="J. Smith at 10:40",
                    correct_advice="Ask the LGSCO.",
                    suggested_action="None.",
                    occurred_at=NOW,
                ),
                to_address=mailbox,
                message_id="<f1@example.org>",
                now=NOW,
            )
        )
    for message in messages:
        message.set_boundary("==boundary==")  # otherwise random at each flattening
    return [m.as_bytes(policy=sending_policy or m.policy.clone(linesep="\r\n")) for m in messages]


@pytest.mark.database_independent
def test_rendered_messages_are_byte_for_byte_those_of_the_default_policy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = _wire(monkeypatch, rendering.POLICY)
    ours_again = _wire(monkeypatch, rendering.POLICY)  # now from reused header objects
    standard = _wire(monkeypatch, policy.default)

    assert len(standard) == 8
    assert ours == standard
    assert ours_again == standard


@pytest.mark.database_independent
def test_headers_folded_once_give_the_same_bytes_when_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Flattened as aiosmtplib does (`policy.SMTP`, one object): the second time every header
    object reused comes with its folded form kept from the first."""
    first = _wire(monkeypatch, rendering.POLICY, policy.SMTP)
    unix = _wire(monkeypatch, rendering.POLICY, policy.default)  # the same headers, LF ends
    again = _wire(monkeypatch, rendering.POLICY, policy.SMTP)
    standard = _wire(monkeypatch, policy.default, policy.SMTP)

    assert b"\r\n" not in b"".join(unix)
    assert unix == [m.replace(b"\r\n", b"\n") for m in standard]
    assert b"Zo=C3=AB" in b"".join(standard) and b"\r\n " in b"".join(standard)  # encoded, folded
    assert first == standard
    assert again == standard


@pytest.mark.database_independent
@pytest.mark.parametrize("value", ["a@example.org\r\nBcc: x@example.org", "Subject\nBcc: x"])
def test_a_line_break_in_a_header_value_is_still_refused(value: str) -> None:
    message = rendering.EmailMessage(policy=rendering.POLICY)
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        message["To"] = value
    assert "To" not in message
