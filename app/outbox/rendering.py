"""Rendering at the moment of sending: the one Jinja `Environment` over email_templates/ and
the email policy, for every kind of message (each kind, registered in `app.outbox.kinds`,
builds its context and subject and calls `Renderer.message`).

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

from app.core.months import LONDON
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


class Renderer:
    """Builds ready-to-send messages; `now` decides the greeting and the Date header."""

    def __init__(self, templates_dir: Path, email_from: str, routes: RouteTable) -> None:
        self.env = email_environment(templates_dir)
        self.email_from = email_from
        self.routes = routes

    def body(self, org: str) -> Body:
        """The body `org` names in the route table (CannotRender once it is no longer there)."""
        body = self.routes.body(org)
        if body is None:
            raise CannotRender("unknown_body", f"'{org}' is no longer in the route table.")
        return body

    def message(
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
        """`template`.txt and .html rendered with `context` (plus `subject` and `greeting`),
        with the headers every message carries."""
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
