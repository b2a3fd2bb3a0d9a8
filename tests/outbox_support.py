"""A real SMTP server for the outbox tests (aiosmtpd on a free local port), and small builders."""

import asyncio
import contextlib
import socket
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.clock import Clock
from app.core.database import make_sessionmaker
from app.core.settings import Settings
from app.outbox.backends import EmailBackend
from app.outbox.worker import OutboxWorker
from tests.conftest import Key
from tests.helpers import CALLER, failure, to_cqc, to_lgsco

APPROVED = Path(__file__).with_name("approved")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eml_files(folder: Path) -> list[Path]:
    """The .eml files the file backend wrote, sorted by name."""
    return sorted(Path(folder).glob("*.eml"))


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)  # type: ignore[return-value]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    connection: Any = None  # aiosmtpd's session: one per SMTP connection


@dataclass
class _Handler:
    received: list[Received] = field(default_factory=list)
    refuse_with: str | None = None  # an SMTP reply to every RCPT, e.g. "450 try later"
    refuse_only: str | None = None  # ... or only to RCPTs to this address
    hang_up: bool = False  # close the connection once each message is accepted
    delay: float = 0.0  # seconds the server takes over each message's DATA, as a slow relay
    # Hold each message in DATA until this many are there at once (or `delay` has passed).
    wait_for_together: int = 0
    in_dialogue: int = 0  # messages in DATA right now ...
    most_in_dialogue: int = 0  # ... and the most there ever were at once
    _together: asyncio.Condition | None = None

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.refuse_with and self.refuse_only in (None, address):
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.in_dialogue += 1
        self.most_in_dialogue = max(self.most_in_dialogue, self.in_dialogue)
        try:
            if self.wait_for_together:
                if self._together is None:  # made in the server's own event loop
                    self._together = asyncio.Condition()
                async with self._together:
                    self._together.notify_all()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            self._together.wait_for(
                                lambda: self.most_in_dialogue >= self.wait_for_together
                            ),
                            self.delay or 30,
                        )
            elif self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_dialogue -= 1
        # Received once accepted: the reply below is the relay taking responsibility for it.
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                parse(envelope.content),
                session,
            )
        )
        if self.hang_up:  # after the reply below has been written
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd in its own thread; `start()` may come after a first attempt found it down."""

    def __init__(self, port: int | None = None, **smtp_options: Any) -> None:
        self.port = port or free_port()
        self.handler = _Handler()
        self.smtp_options = smtp_options
        self.controller: Controller | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received

    def start(self) -> "SmtpServer":
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, **self.smtp_options
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def settings(self, base: Settings, **overrides: Any) -> Settings:
        return base.model_copy(
            update={"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": self.port}
            | overrides
        )


def password_checker(user: str, password: str) -> Any:
    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (user, password)
        return AuthResult(success=ok, handled=False)  # let aiosmtpd reply 235 or 535

    return authenticate


def server_tls_context(cert: Any) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context


def worker(
    app: Any,
    settings: Settings,
    *,
    clock: Clock | None = None,
    backend: EmailBackend | None = None,
    owner: str | None = None,
    engine: Any = None,
    batch_size: int = 20,
) -> OutboxWorker:
    """A worker with its own sessions, as the CLI or the lifespan would build it."""
    return OutboxWorker(
        make_sessionmaker(engine or app.state.engine),
        settings,
        app.state.routes,
        clock or app.state.clock,
        backend=backend,
        owner=owner,
        batch_size=batch_size,
    )


@contextlib.asynccontextmanager
async def autocommit(app: Any) -> AsyncIterator[AsyncConnection]:
    """A connection in autocommit mode, as the worker claims on (`service.claim`)."""
    async with app.state.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


async def request_callback(
    client: httpx.AsyncClient,
    key: Key,
    clock: Clock,
    *,
    caller: dict[str, str] | None = None,
    reference: str | None = None,
) -> uuid.UUID:
    """A transfer that failed because lines were busy: the API stores a call back request."""
    outcome = {"status": "failed", **failure("high_call_volume", caller=caller or CALLER)}
    if key.org == "cqc":
        body = to_lgsco(clock.now(), outcome=outcome)
        if reference:
            body["sender_reference"] = reference
    else:
        body = to_cqc(
            sender_reference=reference or "LG-2002",
            permission_to_share_at=clock.now().isoformat(),
            outcome=outcome,
        )
    response = await client.post("/v1/transfers", json=body, headers=key.headers)
    assert response.status_code == 201, response.text
    return uuid.UUID(response.json()["callback_request_id"])


def approval_copy(message: EmailMessage) -> tuple[str, str]:
    """The parts of a message a person approves: headers that do not vary, then each body."""
    headers = "".join(
        f"{name}: {message[name]}\n" for name in ("From", "To", "Reply-To", "Subject", "Date")
    )
    part_text = message.get_body(("plain",))
    part_html = message.get_body(("html",))
    assert part_text is not None and part_html is not None
    # Over SMTP the lines end in CRLF; in an .eml file as Python wrote them, in LF.
    return (
        headers + "\n" + part_text.get_content().replace("\r\n", "\n"),  # type: ignore[attr-defined]
        part_html.get_content().replace("\r\n", "\n"),  # type: ignore[attr-defined]
    )


def assert_approved(name: str, received: str) -> None:
    """Compare with tests/approved/NAME; on a difference write NAME.received beside it to review
    (and rename over the approved copy once a person agrees with it)."""
    approved = APPROVED / name
    received_path = APPROVED / f"{name}.received"
    if approved.exists() and approved.read_text(encoding="utf-8") == received:
        received_path.unlink(missing_ok=True)
        return
    received_path.write_text(received, encoding="utf-8")
    raise AssertionError(
        f"{name} differs from its approved copy: compare {received_path} with {approved}"
    )
