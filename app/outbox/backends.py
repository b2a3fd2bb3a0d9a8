"""Where rendered messages go: .eml files (the default), a real SMTP relay, or the console.

A backend either returns (delivered), or raises `DeliveryError` saying whether trying again
later could help: connection failures and 4xx replies are temporary, 5xx replies permanent.
"""

import asyncio
import os
import ssl
import sys
import uuid
from collections.abc import Iterable
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol, TextIO

import aiosmtplib

from app.core.settings import Settings


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
    """One connection per message through aiosmtplib: STARTTLS or implicit TLS, optional login."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tls_context: ssl.SSLContext | None = None
        if settings.smtp_ca_file is not None:
            self.tls_context = ssl.create_default_context(cafile=str(settings.smtp_ca_file))

    async def send(self, message: EmailMessage, *, sender: str, recipient: str) -> None:
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=[recipient],
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password,
                use_tls=s.smtp_tls,
                start_tls=s.smtp_starttls,
                tls_context=self.tls_context,
                timeout=s.smtp_timeout_seconds,
            )
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
