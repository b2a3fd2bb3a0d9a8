"""The outbox worker: claims due messages, renders them as of now, hands them to the backend,
and records the outcome.

It takes ids and opens its own short sessions (claim; read and render; record), never a
request's, and holds no transaction open while talking to the mail server. Delivery is at least
once: a worker that dies after sending but before recording it leaves a claim that expires, and
the message is sent again with the same Message-ID, which lets the receiver spot the duplicate.
"""

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections import Counter
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit.service import SYSTEM
from app.callbacks.models import CallbackRequest, CallerDetails
from app.callbacks.retention import purge_personal_data
from app.core import metrics
from app.core.clock import Clock
from app.core.settings import Settings
from app.feedback.models import Feedback
from app.outbox import service
from app.outbox.backends import DeliveryError, EmailBackend, make_backend
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
        """Claim one batch of due messages and try each once; returns what became of each."""
        async with self.sessionmaker() as session:
            claims = await service.claim(
                session,
                owner=self.owner,
                now=self.clock.now(),
                lease_seconds=self.settings.outbox_lease_seconds,
                max_attempts=self.settings.outbox_max_attempts,
                limit=self.batch_size,
            )
        return [await self.deliver(c) for c in claims]

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

    async def _render(self, outbox_id: uuid.UUID) -> tuple[EmailMessage, str]:
        """The message as of now, and its recipient, from the record it is about."""
        async with self.sessionmaker() as session:
            message = await session.get(OutboxMessage, outbox_id)
            assert message is not None  # claimed rows are never deleted
            to, message_id, now = message.to_address, message.message_id, self.clock.now()
            if message.kind == "callback_request" and message.callback_request_id is not None:
                callback = await session.get(CallbackRequest, message.callback_request_id)
                if callback is not None:
                    caller = await session.get(CallerDetails, message.callback_request_id)
                    email = self.renderer.callback_request(
                        callback, caller, to_address=to, message_id=message_id, now=now
                    )
                    return email, to
            elif message.kind == "feedback" and message.feedback_id is not None:
                feedback = await session.get(Feedback, message.feedback_id)
                if feedback is not None:
                    email = self.renderer.feedback(
                        feedback, to_address=to, message_id=message_id, now=now
                    )
                    return email, to
        raise CannotRender("record_missing", f"Nothing to render for {message.kind} {outbox_id}.")

    async def deliver(self, claim: service.Claim) -> DeliveryStatus:
        try:
            email, recipient = await self._render(claim.id)
        except CannotRender as exc:
            logger.warning("outbox %s cannot be rendered: %s", claim.id, exc.code)
            return await self._failed(claim, exc.code, permanent=True)
        except Exception:
            # e.g. a template an operator broke: retried, and dead once attempts run out.
            logger.exception("outbox %s: rendering failed", claim.id)
            return await self._failed(claim, "render_failed", permanent=False)
        # No session is open: nothing is held while the mail server takes its time.
        try:
            await self.backend.send(email, sender=self.settings.email_from, recipient=recipient)
        except DeliveryError as exc:
            logger.warning(
                "outbox %s attempt %d failed: %s %s", claim.id, claim.attempts, exc.code, exc
            )
            return await self._failed(claim, exc.code, permanent=exc.permanent)
        except Exception:
            logger.exception("outbox %s attempt %d failed unexpectedly", claim.id, claim.attempts)
            return await self._failed(claim, "unexpected_error", permanent=False)
        async with self.sessionmaker() as session:
            recorded = await service.mark_sent(
                session, claim.id, owner=self.owner, now=self.clock.now()
            )
        if not recorded:
            logger.warning("outbox %s sent, but its claim had passed to another worker", claim.id)
        logger.info("outbox %s sent (attempt %d)", claim.id, claim.attempts)
        metrics.record_delivery("sent")
        return DeliveryStatus.sent

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
