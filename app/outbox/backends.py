"""Where rendered messages go: .eml files (the default), a real SMTP relay, or the console.

A backend either returns (delivered), or raises `DeliveryError` saying whether trying again
later could help: connection failures and 4xx replies are temporary, 5xx replies permanent.
"""

import asyncio
import contextlib
import email.policy
import os
import ssl
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol, TextIO

import aiosmtplib
from aiosmtplib.email import flatten_message
from aiosmtplib.protocol import normalize_message_line_endings

from app.core.settings import Settings
from app.outbox.rendering import RenderedEmail


class DeliveryError(Exception):
    def __init__(self, code: str, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.code = code
        self.permanent = permanent


class EmailBackend(Protocol):
    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None: ...


class FileBackend:
    """Writes each message to `<folder>/<message-id>.eml`; a resend overwrites the same file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_for(self, message: EmailMessage) -> Path:
        local_part = str(message["Message-ID"]).strip("<>").split("@", 1)[0]
        return self.folder / f"{local_part}.eml"

    def remove(self, outbox_ids: Iterable[uuid.UUID]) -> None:
        """Delete the copies of messages (their bodies hold a caller's details) once purged."""
        for outbox_id in outbox_ids:
            (self.folder / f"{outbox_id}.eml").unlink(missing_ok=True)

    def _write(self, message: EmailMessage) -> None:
        path = self.path_for(message)
        self.folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".eml.partial")
        partial.write_bytes(message.as_bytes())
        os.replace(partial, path)  # readers of the folder never see half a message

    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None:
        try:
            await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise DeliveryError("file_write_failed", str(exc), permanent=False) from exc


class ConsoleBackend:
    """Prints whole messages, the caller's details included: for development only."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None:
        stream = self.stream or sys.stdout
        stream.write(f"---- email from {sender} to {recipient}\n{message.as_string()}\n")
        stream.flush()


def _reply_error(code: int, message: str) -> DeliveryError:
    # RFC 5321 s.4.2.1: 4yz is a transient failure, 5yz a permanent one.
    return DeliveryError(f"smtp_{code}", f"{code} {message}", permanent=500 <= code < 600)


class SmtpBackend:
    """aiosmtplib: STARTTLS or implicit TLS, optional login. `send` opens a connection for its one
    message; `one_connection(backend)` gives a sender that reuses one for many."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tls_context: ssl.SSLContext | None = None
        if settings.smtp_ca_file is not None:
            self.tls_context = ssl.create_default_context(cafile=str(settings.smtp_ca_file))

    def client(self) -> aiosmtplib.SMTP:
        """A client with the settings' server, TLS and login, not yet connected."""
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password,
            use_tls=s.smtp_tls,
            start_tls=s.smtp_starttls,
            tls_context=self.tls_context,
            timeout=s.smtp_timeout_seconds,
        )

    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None:
        with _delivery_errors():
            async with self.client() as client:  # connects (TLS, login); QUIT at the end
                await send_message(client, message, sender=sender, recipient=recipient)


class SmtpConnection:
    """Sends messages one after another over one SMTP connection, opened at the first send.

    Any failure closes the connection, so the next message starts on a new one and each
    message's outcome is what it would have been on a connection of its own. A connection
    found closed when reused (the server dropped it while idle) gets one more try on a new one.
    """

    def __init__(self, backend: SmtpBackend) -> None:
        self.backend = backend
        self.client: aiosmtplib.SMTP | None = None

    async def send(
        self,
        message: EmailMessage,
        *,
        sender: str,
        recipient: str,
        ready: Awaitable[object] | None = None,
    ) -> None:
        """`ready`: see `send_message`."""
        with _delivery_errors():
            if self.client is not None and self.client.is_connected:
                try:
                    await send_message(
                        self.client, message, sender=sender, recipient=recipient, ready=ready
                    )
                    return
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                    self.close()
                except BaseException:
                    self.close()
                    raise
            self.client = self.backend.client()
            try:
                await self.client.connect()
                await send_message(
                    self.client, message, sender=sender, recipient=recipient, ready=ready
                )
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    async def quit(self) -> None:
        if self.client is not None and self.client.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self.client.quit()
        self.close()


# What aiosmtplib's flatten_message generates with, by (utf8, cte_type): made once, not per
# message (a header's folded form is kept per policy object, see rendering._FoldedOnce).
_SENDING_POLICIES = {
    (False, "8bit"): email.policy.SMTP,
    (True, "8bit"): email.policy.SMTPUTF8,
    (False, "7bit"): email.policy.SMTP.clone(cte_type="7bit"),
    (True, "7bit"): email.policy.SMTPUTF8.clone(cte_type="7bit"),
}


async def send_message(
    client: aiosmtplib.SMTP,
    message: EmailMessage,
    *,
    sender: str,
    recipient: str,
    ready: Awaitable[object] | None = None,
) -> None:
    """`client.send_message(message, ...)`, with a `RenderedEmail` not yet built written to
    bytes without the email package (the same bytes: `RenderedEmail.smtp_bytes`).

    Before flattening, the same as aiosmtplib's `send_message` (5.x): EHLO (HELO if refused)
    once per connection; SMTPUTF8 for an address that is not ASCII; BODY=8BITMIME and 8bit
    parts where the server offers it, 7bit otherwise. Our messages carry no Bcc to remove.
    Then the steps of its `sendmail` for one recipient (SIZE where offered, MAIL, RCPT,
    DATA), except that `ready`, when given, is awaited after the envelope and before the
    data: the relay cannot accept the message before `ready` is done, while the envelope's
    round trips go on meanwhile. (sendmail's RSET after a refusal is not needed: a failure
    closes the connection.)"""
    if not isinstance(message, RenderedEmail):
        if ready is not None:
            await ready
        await client.send_message(message, sender=sender, recipients=[recipient])
        return
    if client.is_ehlo_or_helo_needed:
        try:
            await client.ehlo()
        except aiosmtplib.SMTPHeloError:
            if not client.is_connected:
                raise
            await client.helo()
    options = []
    utf8 = not (sender + recipient).isascii()
    if utf8:
        if not client.supports_extension("smtputf8"):
            raise aiosmtplib.SMTPNotSupported(
                "An address containing non-ASCII characters was provided, but SMTPUTF8 is not "
                "supported by this server"
            )
        options.append("SMTPUTF8")
    cte_type = "8bit" if client.supports_extension("8BITMIME") else "7bit"
    if cte_type == "8bit":
        options.append("BODY=8BITMIME")
    data = message.smtp_bytes(_SENDING_POLICIES[utf8, cte_type])
    if data is None:
        data = flatten_message(message, utf8=utf8, cte_type=cte_type)
    if client.supports_extension("size"):
        # RFC 1870: the octets as the DATA command will transmit them, CRLF pairs included.
        options.insert(0, f"size={len(normalize_message_line_endings(data))}")
    encoding = "utf-8" if utf8 else "ascii"
    await client.mail(sender, options=options, encoding=encoding)
    await client.rcpt(recipient, encoding=encoding)
    if ready is not None:
        await ready
    await client.data(data)


async def send_when(
    backend: EmailBackend,
    message: EmailMessage,
    *,
    sender: str,
    recipient: str,
    ready: Awaitable[object] | None,
) -> None:
    """Send `message` so that it cannot be accepted before `ready` is done: over a kept SMTP
    connection its envelope goes first and its data once `ready` is done (`send_message`);
    any other backend starts once `ready` is done."""
    if isinstance(backend, SmtpConnection):
        await backend.send(message, sender=sender, recipient=recipient, ready=ready)
        return
    if ready is not None:
        await ready
    await backend.send(message, sender=sender, recipient=recipient)


@contextlib.asynccontextmanager
async def one_connection(backend: EmailBackend) -> AsyncIterator[EmailBackend]:
    """A sender that keeps its connection: over SMTP it reuses one (QUIT at the end, or just
    closed when the sending was cancelled); other backends have no connection to keep and are
    used as they are."""
    if not isinstance(backend, SmtpBackend):
        yield backend
        return
    connection = SmtpConnection(backend)
    try:
        yield connection
    except BaseException:
        connection.close()
        raise
    await connection.quit()


def connections_for(backend: EmailBackend, settings: Settings) -> int:
    """How many messages a worker hands to `backend` at once: `smtp_connections` over SMTP,
    one at a time to the others (files and the console gain nothing from more)."""
    return settings.smtp_connections if isinstance(backend, SmtpBackend) else 1


@contextlib.contextmanager
def _delivery_errors() -> Iterator[None]:
    """aiosmtplib's exceptions as `DeliveryError`s, temporary or permanent."""
    try:
        yield
    except aiosmtplib.SMTPRecipientsRefused as exc:
        first = exc.recipients[0]
        raise _reply_error(first.code, first.message) from exc
    except aiosmtplib.SMTPResponseException as exc:
        raise _reply_error(exc.code, exc.message) from exc
    except aiosmtplib.SMTPNotSupported as exc:
        # e.g. STARTTLS or AUTH asked for but not offered: settings must change first.
        raise DeliveryError("smtp_not_supported", str(exc), permanent=True) from exc
    except (aiosmtplib.SMTPTimeoutError, TimeoutError) as exc:
        raise DeliveryError("smtp_timeout", str(exc), permanent=False) from exc
    except aiosmtplib.SMTPServerDisconnected as exc:
        raise DeliveryError("smtp_disconnected", str(exc), permanent=False) from exc
    except OSError as exc:  # refused, unreachable, or TLS that failed (aiosmtplib wraps it)
        tls = isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError)
        code = "smtp_tls_failed" if tls else "smtp_connect_failed"
        raise DeliveryError(code, str(exc), permanent=False) from exc


def make_backend(settings: Settings) -> EmailBackend:
    match settings.email_backend:
        case "file":
            return FileBackend(settings.email_dir)
        case "smtp":
            return SmtpBackend(settings)
        case "console":
            return ConsoleBackend()
    raise ValueError(f"unknown email_backend {settings.email_backend!r}: use file, smtp or console")
