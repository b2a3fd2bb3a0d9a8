"""The outbox worker: claims due messages, renders them as of now, hands them to the backend,
and records the outcome.

It takes ids and opens its own short sessions (claim a batch; read the batch's records; record
outcomes), never a request's, and holds no transaction open while talking to the mail server.
Over SMTP a batch's messages share one connection. A failed attempt is recorded at once; the
batch's sent messages are recorded together when its sending ends. Delivery is at least once:
a worker that dies after sending but before recording (at most one batch) leaves claims that
expire, and those messages are sent again with the same Message-ID, which lets the receiver
spot the duplicate."""

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute

from app.audit.service import SYSTEM
from app.callbacks.models import CallbackRequest, CallerDetails
from app.callbacks.retention import purge_personal_data
from app.core import metrics
from app.core.clock import Clock
from app.core.settings import Settings
from app.feedback.models import Feedback
from app.outbox import service
from app.outbox.backends import DeliveryError, EmailBackend, make_backend, one_connection
from app.outbox.models import DeliveryStatus, OutboxMessage
from app.outbox.rendering import CannotRender, Renderer
from app.protocol.routes import RouteTable

logger = logging.getLogger("handoff.outbox")

MAX_BACKOFF_SECONDS = 6 * 3600


def backoff_seconds(attempts: int, base: float, rng: random.Random) -> float:
    """Delay after the `attempts`-th failed try: base, 2 x base, 4 x base, ... each +/- 25%,
    so that messages that failed together do not all come back at the same moment."""
    delay = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return delay * rng.uniform(0.75, 1.25)


@dataclass(frozen=True)
class _Records:
    """What one batch's messages are rendered from, by id."""

    messages: dict[uuid.UUID, OutboxMessage]
    callbacks: dict[uuid.UUID, CallbackRequest]
    callers: dict[uuid.UUID, CallerDetails]  # by call back request id; absent once purged
    feedback: dict[uuid.UUID, Feedback]


async def _by_id(
    session: AsyncSession, key: InstrumentedAttribute[Any], ids: list[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    if not ids:
        return {}
    rows = await session.scalars(select(key.class_).where(key.in_(ids)))
    return {getattr(row, key.key): row for row in rows}


def default_owner() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class OutboxWorker:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        routes: RouteTable,
        clock: Clock,
        *,
        backend: EmailBackend | None = None,
        owner: str | None = None,
        batch_size: int = 20,
        rng: random.Random | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        self.backend = backend or make_backend(settings)
        self.renderer = Renderer(settings.email_templates_dir, settings.email_from, routes)
        self.owner = owner or default_owner()
        self.batch_size = batch_size
        self.rng = rng or random.Random()
        self.next_purge_at: datetime | None = None  # None: purge in the first round

    async def purge_if_due(self) -> int | None:
        """Purge the callers' details that are due, at most once per purge interval (by the
        clock); returns how many requests were purged, or None when it was not time yet."""
        now = self.clock.now()
        if self.next_purge_at is not None and now < self.next_purge_at:
            return None
        self.next_purge_at = now + timedelta(seconds=self.settings.purge_interval_seconds)
        return await purge_personal_data(self.sessionmaker, self.settings, now=now, actor=SYSTEM)

    async def run_once(self) -> list[DeliveryStatus]:
        """Claim one batch of due messages and try each once; returns what became of each.

        The batch's records are read in one session, and over SMTP its messages share one
        connection; each message is still rendered just before it is sent. A failure is
        recorded at once; the batch's sent messages together when its sending ends."""
        async with self.sessionmaker() as session:
            claims = await service.claim(
                session,
                owner=self.owner,
                now=self.clock.now(),
                lease_seconds=self.settings.outbox_lease_seconds,
                max_attempts=self.settings.outbox_max_attempts,
                limit=self.batch_size,
            )
        if not claims:
            return []
        try:
            records = await self._read([c.id for c in claims])
        except Exception:
            logger.exception("outbox: reading a batch of %d failed", len(claims))
            return [await self._failed(c, "render_failed", permanent=False) for c in claims]
        outcomes: list[DeliveryStatus] = []
        sent: list[service.Claim] = []
        try:
            async with one_connection(self.backend) as backend:
                for claim in claims:
                    outcomes.append(await self._attempt(claim, records, backend))
                    if outcomes[-1] is DeliveryStatus.sent:
                        sent.append(claim)
        finally:
            await self._record_sent(sent)
        return outcomes

    async def drain(self) -> Counter[DeliveryStatus]:
        """Try every message that is due now, once each, then return (the operators' one-shot)."""
        outcomes: Counter[DeliveryStatus] = Counter()
        while batch := await self.run_once():
            outcomes.update(batch)
        return outcomes

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set. A failing database or mail server never ends the loop."""
        logger.info("outbox worker %s started", self.owner)
        while not stop.is_set():
            try:
                await self.purge_if_due()
            except Exception:  # a failed purge must not hold up the emails; tried next interval
                logger.exception("outbox worker %s: the purge failed", self.owner)
            try:
                batch = await self.run_once()
            except Exception:
                logger.exception("outbox worker %s: a round failed", self.owner)
                batch = []
            if len(batch) < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.settings.outbox_poll_seconds)
        logger.info("outbox worker %s stopped", self.owner)

    async def _read(self, ids: list[uuid.UUID]) -> "_Records":
        """The claimed rows and the records they are about, in one short session."""
        async with self.sessionmaker() as session:
            messages = await _by_id(session, OutboxMessage.id, ids)
            about = [m.callback_request_id for m in messages.values() if m.callback_request_id]
            feedback = [m.feedback_id for m in messages.values() if m.feedback_id]
            return _Records(
                messages=messages,
                callbacks=await _by_id(session, CallbackRequest.id, about),
                callers=await _by_id(session, CallerDetails.callback_request_id, about),
                feedback=await _by_id(session, Feedback.id, feedback),
            )

    def _render(self, outbox_id: uuid.UUID, records: "_Records") -> tuple[EmailMessage, str]:
        """The message as of now, and its recipient, from the record it is about."""
        message = records.messages[outbox_id]  # claimed rows are never deleted
        to, message_id, now = message.to_address, message.message_id, self.clock.now()
        if message.kind == "callback_request" and message.callback_request_id is not None:
            callback = records.callbacks.get(message.callback_request_id)
            if callback is not None:
                caller = records.callers.get(message.callback_request_id)
                email = self.renderer.callback_request(
                    callback, caller, to_address=to, message_id=message_id, now=now
                )
                return email, to
        elif message.kind == "feedback" and message.feedback_id is not None:
            feedback = records.feedback.get(message.feedback_id)
            if feedback is not None:
                email = self.renderer.feedback(
                    feedback, to_address=to, message_id=message_id, now=now
                )
                return email, to
        raise CannotRender("record_missing", f"Nothing to render for {message.kind} {outbox_id}.")

    async def _attempt(
        self, claim: service.Claim, records: "_Records", backend: EmailBackend
    ) -> DeliveryStatus:
        """Render and send one message; a failure is recorded at once, a success by the caller
        (`sent` here means handed to the backend, to be recorded with the batch's others)."""
        try:
            email, recipient = self._render(claim.id, records)
        except CannotRender as exc:
            logger.warning("outbox %s cannot be rendered: %s", claim.id, exc.code)
            return await self._failed(claim, exc.code, permanent=True)
        except Exception:
            # e.g. a template an operator broke: retried, and dead once attempts run out.
            logger.exception("outbox %s: rendering failed", claim.id)
            return await self._failed(claim, "render_failed", permanent=False)
        # No session is open: nothing is held while the mail server takes its time.
        try:
            await backend.send(email, sender=self.settings.email_from, recipient=recipient)
        except DeliveryError as exc:
            logger.warning(
                "outbox %s attempt %d failed: %s %s", claim.id, claim.attempts, exc.code, exc
            )
            return await self._failed(claim, exc.code, permanent=exc.permanent)
        except Exception:
            logger.exception("outbox %s attempt %d failed unexpectedly", claim.id, claim.attempts)
            return await self._failed(claim, "unexpected_error", permanent=False)
        return DeliveryStatus.sent

    async def _record_sent(self, claims: list[service.Claim]) -> None:
        """Record a batch's sent messages together, once its sending is over."""
        if not claims:
            return
        async with self.sessionmaker() as session:
            recorded = await service.mark_all_sent(
                session, [c.id for c in claims], owner=self.owner, now=self.clock.now()
            )
        for claim in claims:
            if claim.id not in recorded:
                logger.warning(
                    "outbox %s sent, but its claim had passed to another worker", claim.id
                )
            logger.info("outbox %s sent (attempt %d)", claim.id, claim.attempts)
            metrics.record_delivery("sent")

    async def _failed(self, claim: service.Claim, code: str, *, permanent: bool) -> DeliveryStatus:
        now = self.clock.now()
        retry_at: datetime | None = None
        if not permanent and claim.attempts < self.settings.outbox_max_attempts:
            delay = backoff_seconds(
                claim.attempts, self.settings.outbox_backoff_base_seconds, self.rng
            )
            retry_at = now + timedelta(seconds=delay)
        async with self.sessionmaker() as session:
            await service.mark_failed(
                session, claim.id, owner=self.owner, now=now, code=code, retry_at=retry_at
            )
        metrics.record_delivery("dead" if retry_at is None else "retry")
        return DeliveryStatus.dead if retry_at is None else DeliveryStatus.retrying
