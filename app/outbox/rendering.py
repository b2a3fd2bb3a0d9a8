"""The protocol's emails, rendered at the moment of sending from the records they are about.

One Jinja `Environment` serves every message: autoescaped for the HTML part, plain for the
text part. Headers carry no caller data: the subject is fixed wording plus references that
were validated to a safe alphabet, and the addresses come from the route table and settings.
"""

import functools
import re
from datetime import datetime
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.months import LONDON
from app.core.validation import format_phone_for_reading
from app.feedback.models import Feedback
from app.protocol.routes import Body, RouteTable

_BLANK_LINES = re.compile(r"\n\s*\n")


class CannotRender(Exception):
    """The message cannot be built now or later (e.g. the caller's details were purged)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class _Headers(HeaderRegistry):
    """The standard header registry, without its repeated work (the email package's own
    registry builds a new class for every header it makes, and parses every value again).

    The class for each header name is made once, and a header is made once per value and
    reused: header objects are immutable strings, and most of ours repeat from message to
    message (addresses, content types, the Date within one second). Values still reach the
    registry only through `policy.header_store_parse`, which refuses line breaks first."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}
        self._made = functools.lru_cache(maxsize=256)(super().__call__)

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        if key not in self._classes:
            self._classes[key] = super().__getitem__(name)
        return self._classes[key]

    def __call__(self, name: str, value: object) -> BaseHeader:
        if isinstance(value, str):
            return self._made(name, value)  # type: ignore[no-any-return]
        return super().__call__(name, value)


# The default policy (what `EmailMessage()` uses), with the registry above.
POLICY = policy.default.clone(header_factory=_Headers())


def greeting(now: datetime) -> str:
    """The protocol's greeting by the time of sending in the UK: morning until 12:00."""
    return "Good Morning" if now.astimezone(LONDON).hour < 12 else "Good Afternoon"


def _paragraphs(text: str) -> Markup:
    """Plain text to HTML: blank lines part paragraphs, single line breaks become <br>."""
    blocks = [b.strip("\n") for b in _BLANK_LINES.split(text.strip())]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(escape(line) for line in b.split("\n")))
        for b in blocks
        if b
    )


def email_environment(templates_dir: Path) -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["paragraphs"] = _paragraphs
    return env


def callback_request_subject(sender: Body, reference: str) -> str:
    return f"Call back request - {sender.reference_label}: {reference}"


def feedback_subject(sender: Body, case_references: list[str]) -> str:
    return (
        f"Feedback from {sender.short_name} on a misdirected call or incorrect advice: "
        + ", ".join(case_references)
    )


class Renderer:
    """Builds ready-to-send messages; `now` decides the greeting and the Date header."""

    def __init__(
        self,
        templates_dir: Path,
        email_from: str,
        routes: RouteTable,
        public_url: str | None = None,
    ) -> None:
        self.env = email_environment(templates_dir)
        self.email_from = email_from
        self.routes = routes
        # HANDOFF_PUBLIC_URL: when set, the call back email links to the request's page.
        self.public_url = public_url.rstrip("/") if public_url else None

    def _body(self, org: str) -> Body:
        body = self.routes.body(org)
        if body is None:
            raise CannotRender("unknown_body", f"'{org}' is no longer in the route table.")
        return body

    def _message(
        self,
        template: str,
        context: dict[str, object],
        *,
        subject: str,
        to_address: str,
        reply_to: str,
        message_id: str,
        now: datetime,
    ) -> EmailMessage:
        context = {**context, "subject": subject, "greeting": greeting(now)}
        message = EmailMessage(policy=POLICY)
        message["From"] = self.email_from
        message["To"] = to_address
        # Replies reach the team that would have sent this by hand.
        message["Reply-To"] = reply_to
        message["Subject"] = subject
        message["Date"] = format_datetime(now)
        message["Message-ID"] = message_id
        message.set_content(self.env.get_template(f"{template}.txt").render(context))
        message.add_alternative(
            self.env.get_template(f"{template}.html").render(context), subtype="html"
        )
        for part in message.iter_parts():
            del part["MIME-Version"]  # email adds it to parts too; it belongs at the top only
        return message

    def callback_request(
        self,
        callback: CallbackRequest,
        caller: CallerDetails | None,
        *,
        to_address: str,
        message_id: str,
        now: datetime,
    ) -> EmailMessage:
        if caller is None:
            raise CannotRender(
                "caller_details_purged",
                "The caller's details were purged before the call back request could be sent.",
            )
        sender = self._body(callback.from_org)
        receiver = self._body(callback.to_org)
        return self._message(
            "callback_request",
            {
                "sender": sender,
                "receiver": receiver,
                "reference": callback.sender_reference,
                "name": caller.name,
                "contact_number": format_phone_for_reading(caller.contact_number),
                "provider": caller.provider,
                # The request's id only: the address carries no personal data.
                "link": f"{self.public_url}/callbacks/{callback.id}" if self.public_url else None,
            },
            subject=callback_request_subject(sender, callback.sender_reference),
            to_address=to_address,
            reply_to=sender.callback_mailbox,
            message_id=message_id,
            now=now,
        )

    def feedback(
        self, feedback: Feedback, *, to_address: str, message_id: str, now: datetime
    ) -> EmailMessage:
        sender = self._body(feedback.from_org)
        about = self._body(feedback.about_org)
        occurred = "not given"
        if feedback.occurred_at is not None:
            local = feedback.occurred_at.astimezone(LONDON)
            occurred = f"{local:%A} {local.day} {local:%B %Y, %H:%M} (UK time)"
        return self._message(
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
