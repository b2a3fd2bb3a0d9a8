"""Rendering at the moment of sending: the one Jinja `Environment` over email_templates/ and
the email policy, for every kind of message (each kind, registered in `app.outbox.kinds`,
builds its context and subject and calls `Renderer.message`).

One Jinja `Environment` serves every message: autoescaped for the HTML part, plain for the
text part. Headers carry no caller data: the subject is fixed wording plus references that
were validated to a safe alphabet, and the addresses come from the route table and settings.
"""

import functools
import re
import sys
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.contentmanager import _encode_text  # type: ignore[attr-defined]
from email.generator import NLCRE, BytesGenerator  # type: ignore[attr-defined]
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy, Policy
from email.utils import format_datetime
from pathlib import Path
from typing import Any

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


class _FoldedOnce(BaseHeader):
    """A header that keeps its folded form for each policy it was folded for.

    A header object is immutable, and its folded form depends only on it and on the policy, so
    a header made once and reused (see `_Headers`) is folded once per policy, not once per
    message that carries it."""

    def fold(self, *, policy: Policy) -> str:
        folds: dict[Policy, str] = self.__dict__.setdefault("_folds", {})
        folded = folds.get(policy)
        if folded is None:
            if len(folds) >= 4:  # policies are module constants; a clone each time is not
                folds.clear()
            folded = folds[policy] = super().fold(policy=policy)
        return folded


class _Headers(HeaderRegistry):
    """The standard header registry, without its repeated work (the email package's own
    registry builds a new class for every header it makes, and parses every value again).

    The class for each header name is made once, and a header is made once per value and
    reused: header objects are immutable strings, and most of ours repeat from message to
    message (addresses, content types, the Date within one second). Values still reach the
    registry only through `policy.header_store_parse`, which refuses line breaks first."""

    def __init__(self) -> None:
        super().__init__(base_class=_FoldedOnce)
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
        # Each template is read once per process: without this, Jinja looks at the file's
        # time on disk before every message. A changed template is used after a restart.
        auto_reload=False,
    )
    env.filters["paragraphs"] = _paragraphs
    return env


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
        # The bodies' signatures are the same in every message they send: each is made HTML
        # once here, not for every message (any other text is made HTML as it comes).
        signatures = {
            body.signature: _paragraphs(body.signature) for body in routes.bodies.values()
        }

        def paragraphs(text: str) -> Markup:
            made = signatures.get(text) if type(text) is str else None
            return made if made is not None else _paragraphs(text)

        self.env.filters["paragraphs"] = paragraphs
        # HANDOFF_PUBLIC_URL, where people reach the pages: a kind may link to them.
        self.public_url = public_url.rstrip("/") if public_url else None

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
    ) -> "RenderedEmail":
        """`template`.txt and .html rendered with `context` (plus `subject` and `greeting`),
        with the headers every message carries."""
        context = {**context, "subject": subject, "greeting": greeting(now)}
        headers = (
            ("From", self.email_from),
            ("To", to_address),
            # Replies reach the team that would have sent this by hand.
            ("Reply-To", reply_to),
            ("Subject", subject),
            ("Date", format_datetime(now)),
            ("Message-ID", message_id),
        )
        for _, value in headers:
            # Refused now, before anything is sent, as `message[name] = value` refuses it.
            if len(value.splitlines()) > 1:
                raise ValueError(
                    "Header values may not contain linefeed or carriage return characters"
                )
        return RenderedEmail(
            _Pieces(
                headers=headers,
                text=self.env.get_template(f"{template}.txt").render(context),
                html=self.env.get_template(f"{template}.html").render(context),
            )
        )


@dataclass(frozen=True)
class _Pieces:
    """A rendered message before it is an `EmailMessage`: its headers' names and values (each
    value checked for line breaks) and its two alternatives."""

    headers: tuple[tuple[str, str], ...]
    text: str
    html: str

    def build(self) -> EmailMessage:
        """The message as the email package makes it (multipart/alternative, text then HTML)."""
        message = EmailMessage(policy=POLICY)
        for name, value in self.headers:
            message[name] = value
        message.set_content(self.text)
        message.add_alternative(self.html, subtype="html")
        for part in message.iter_parts():
            del part["MIME-Version"]  # email adds it to parts too; it belongs at the top only
        return message


class RenderedEmail(EmailMessage):
    """A message from `Renderer.message`: an `EmailMessage` built only when it is first used
    as one, so that sending it over SMTP (`smtp_bytes`) need not build it at all.

    Reading or changing it in any way (a header, its parts, `as_bytes`) builds it first, with
    the email package exactly as before, and from then on it is that message; `smtp_bytes` is
    only for a message not yet built (nobody can have changed it)."""

    def __init__(self, pieces: _Pieces | None = None, *, policy: Policy = POLICY) -> None:
        if pieces is None:  # as the email package makes a message of this class for a part
            super().__init__(policy=policy)
        else:
            self._pieces = pieces

    def __getattr__(self, name: str) -> Any:
        # Only called for an attribute not found: before the message is built, every one of
        # EmailMessage's own (its headers, payload, policy...). Probes for special methods
        # (copy, pickle) find none, as on any message.
        if name.startswith("__") or not self._build():
            raise AttributeError(name)
        return getattr(self, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_pieces":
            self._build()  # so that what is set is not overwritten by the build
        super().__setattr__(name, value)

    def _build(self) -> bool:
        """Build the message now if it is not built yet; whether it was built now."""
        pieces: _Pieces | None = self.__dict__.pop("_pieces", None)
        if pieces is None:
            return False
        self.__dict__.update(pieces.build().__dict__)
        return True

    def email_message(self) -> EmailMessage:
        """This message built now, as the email package makes it (what it becomes when used
        as an `EmailMessage`)."""
        pieces: _Pieces | None = self.__dict__.get("_pieces")
        return pieces.build() if pieces is not None else self

    def smtp_bytes(self, policy: "EmailPolicy[Any]") -> bytes | None:
        """The bytes `email.generator.BytesGenerator(policy=policy)` would write for this
        message (what aiosmtplib's `send_message` sends), written without building it; None
        once it is built, or where a part's text would go as 8bit (left to the generator)."""
        pieces: _Pieces | None = self.__dict__.get("_pieces")
        if pieces is None:
            return None
        nl = policy.linesep
        parts = []
        for subtype, text in (("plain", pieces.text), ("html", pieces.html)):
            # The encoding `set_content` chooses (7bit, quoted-printable or base64).
            cte, payload = _encode_text(text, "utf-8", None, POLICY)
            if not payload.isascii():
                return None
            head = _folded(f'text/{subtype}; charset="utf-8"', "Content-Type", policy)
            head += _folded(cte, "Content-Transfer-Encoding", policy)
            parts.append((head + nl + nl.join(NLCRE.split(payload))).encode("ascii"))
        body = nl.encode("ascii").join(parts)
        boundary = BytesGenerator._make_boundary()  # type: ignore[attr-defined]
        if f"--{boundary}".encode("ascii") in body:
            # It could be a line of a part (almost never): the generator's own search then
            # (a new boundary, and its check for the lines `--boundary` and `--boundary--`).
            boundary = BytesGenerator._make_boundary(body)  # type: ignore[attr-defined]
        top = "".join(_header_line(name, value, policy) for name, value in pieces.headers)
        top += _folded("1.0", "MIME-Version", policy)
        top += _multipart_type(boundary, policy)
        encoding = "utf-8" if policy.utf8 else "ascii"
        delimiter = f"--{boundary}{nl}".encode("ascii")
        return b"".join(
            [
                (top + nl).encode(encoding, "surrogateescape"),  # as the generator encodes
                delimiter,
                (nl.encode("ascii") + delimiter).join(parts),
                f"{nl}--{boundary}--{nl}".encode("ascii"),
            ]
        )


def _folded(value: str, name: str, policy: Policy) -> str:
    """`name: value` as a header line, as the generator folds it for `policy`."""
    return str(POLICY.header_store_parse(name, value)[1].fold(policy=policy))


# A Message-ID as handoff makes them (`<uuid@domain>`): the header object's text is the value.
_PLAIN_MESSAGE_ID = re.compile(r"<[0-9a-f-]+@[A-Za-z0-9.-]+>")


def _header_line(name: str, value: str, policy: Policy) -> str:
    """The header line the generator writes for `name: value` under `policy`.

    The Subject and Message-ID differ from message to message: where the email package would
    write them as they are (printable ASCII with nothing to decode, on one line), they are
    written so without parsing a header for each; any other value goes through the registry
    (whose header objects keep their folded forms, see `_FoldedOnce`)."""
    if len(name) + 2 + len(value) <= (policy.max_line_length or sys.maxsize) and (
        (
            name == "Subject"
            and value.isascii()
            and value.isprintable()
            and value == value.strip()
            and "=?" not in value
            and value
        )
        or (name == "Message-ID" and _PLAIN_MESSAGE_ID.fullmatch(value))
    ):
        return f"{name}: {value}{policy.linesep}"
    return _folded(value, name, policy)


_DIGIT = re.compile(r"[0-9]")


@functools.lru_cache(maxsize=16)
def _multipart_type_shaped(shape: str, policy: Policy) -> str:
    return _folded(f'multipart/alternative; boundary="{shape}"', "Content-Type", policy)


def _multipart_type(boundary: str, policy: Policy) -> str:
    """The top Content-Type line with `boundary`, folded as the generator would fold it.

    A boundary is `=` x 15, random digits, `==` (and rarely `.n`); the line is folded once
    per shape (the boundary with its digits as 0s, the same lengths and kinds of character)
    and the digits put back, instead of parsing and folding a new header for every message."""
    shape = _DIGIT.sub("0", boundary)
    return _multipart_type_shaped(shape, policy).replace(f'"{shape}"', f'"{boundary}"')
