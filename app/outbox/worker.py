"""The outbox worker: claims due messages, renders them as of now, hands them to the backend
over up to `smtp_connections` SMTP connections at once, and records each outcome as it happens.

It takes ids and uses its own connections, never a request's session: two kept in autocommit
mode for a stretch of sending (one to claim batches and read their records, one to record
acceptances) and short sessions for the rest (renewing leases, recording failures). It holds
no transaction open while talking to the mail server. A live worker never lets a claim run
out: it renews the lease of every message it holds while it holds it, and sends nothing whose
lease it could not renew. Each acceptance by the relay is recorded as soon as it comes,
several in one statement when they come together, and an acceptance recorded late (the lease
ran out) is still recorded as sent, never as a failure. Delivery is at least once: a worker
that dies leaves claims that expire, and of those only the messages that were in the SMTP
dialogue when it died (one per connection) can have reached the relay; they are sent again
with the same Message-ID, which lets the receiver spot the duplicate."""

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from app.core.clock import Clock
from app.core.periodic import PeriodicJob
from app.core.settings import Settings
from app.outbox import metrics, service
from app.outbox.backends import (
    DeliveryError,
    EmailBackend,
    connections_for,
    make_backend,
    one_connection,
    send_when,
)
from app.outbox.kinds import KINDS, Envelope, KindRegistry, UnknownKind
from app.outbox.models import DeliveryStatus
from app.outbox.rendering import CannotRender, Renderer
from app.protocol.routes import RouteTable

logger = logging.getLogger("handoff.outbox")

MAX_BACKOFF_SECONDS = 6 * 3600
RECORD_TRIES = 5  # a second apart, for a database that is briefly away


def backoff_seconds(attempts: int, base: float, rng: random.Random) -> float:
    """Delay after the `attempts`-th failed try: base, 2 x base, 4 x base, ... each +/- 25%,
    so that messages that failed together do not all come back at the same moment."""
    delay = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return delay * rng.uniform(0.75, 1.25)


# What one batch's messages are rendered from: each kind's records by subject id (a record
# absent was not found).
_Records = dict[str, Mapping[uuid.UUID, Any]]


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
        jobs: Sequence[PeriodicJob] = (),
        kinds: KindRegistry = KINDS,
    ) -> None:
        """`jobs` run between rounds of `run`, each when due by `clock` (the housekeeping
        app.wiring hands it); `kinds` are the email kinds it can render."""
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.clock = clock
        self.backend = backend or make_backend(settings)
        self.renderer = Renderer(
            settings.email_templates_dir, settings.email_from, routes, settings.public_url
        )
        self.owner = owner or default_owner()
        self.batch_size = batch_size
        self.rng = rng or random.Random()
        self.jobs = list(jobs)
        self.kinds = kinds

    async def run_due_jobs(self) -> None:
        """Run each periodic job that is due; a job that fails is logged and tried at its next
        time, and never holds up the emails."""
        for job in self.jobs:
            try:
                await job.run_if_due(self.clock.now())
            except Exception:
                logger.exception("outbox worker %s: the job %s failed", self.owner, job.name)

    async def run_once(self) -> list[DeliveryStatus]:
        """Claim one batch of due messages and try each once; returns what became of each.

        The batch's records are read in one session; each message is rendered just before it
        is queued for one of the connections, and each outcome is recorded as it comes."""
        async with _Delivery(self) as delivery:
            outcomes = await delivery.submit_batch()
        return [outcome.result() for outcome in outcomes]

    async def drain(self) -> Counter[DeliveryStatus]:
        """Try every message that is due now, once each, then return (the operators' one-shot).

        The connections stay open across batches, and the next batch is claimed while the last
        messages of the one before are still being sent."""
        outcomes: list[asyncio.Future[DeliveryStatus]] = []
        async with _Delivery(self) as delivery:
            while batch := await delivery.submit_batch():
                outcomes += batch
        return Counter(outcome.result() for outcome in outcomes)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set. A failing database or mail server never ends the loop.

        Once `stop` is set, the messages being sent finish, and those claimed but not yet
        begun are given back (not counted as attempts) for another worker to send."""
        logger.info("outbox worker %s started", self.owner)
        while not stop.is_set():
            await self.run_due_jobs()
            try:
                async with _Delivery(self, stop) as delivery:
                    # Full batches follow each other at once; a short one means the queue is
                    # empty for now, and the connections are closed until the next poll.
                    while not stop.is_set():
                        if len(await delivery.submit_batch()) < self.batch_size:
                            break
            except Exception:
                logger.exception("outbox worker %s: a round failed", self.owner)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.outbox_poll_seconds)
        logger.info("outbox worker %s stopped", self.owner)

    async def _read(self, claims: Sequence[service.Claim], connection: AsyncConnection) -> _Records:
        """Kind by kind, the records the claimed messages are about, in one short session on
        `connection` (the claims', in autocommit mode: no BEGIN or COMMIT of its own; each
        kind loads the whole batch's records at once)."""
        by_kind: dict[str, list[uuid.UUID]] = {}
        for claim in claims:
            by_kind.setdefault(claim.kind, []).append(claim.subject_id)
        subjects: _Records = {}
        async with self.sessionmaker(bind=connection) as session:
            for name, subject_ids in by_kind.items():
                try:
                    kind = self.kinds.get(name)
                except UnknownKind:
                    continue  # each of its messages fails as it comes to be rendered
                subjects[name] = await kind.load(session, subject_ids)
        return subjects

    def _render(self, claim: service.Claim, records: _Records) -> tuple[EmailMessage, str]:
        """The message as of now, and its recipient, from the record it is about."""
        try:
            kind = self.kinds.get(claim.kind)
        except UnknownKind:
            # Not permanent: a worker wired without this kind (an older version) gives way.
            raise _Unrenderable("unknown_kind") from None
        record = records.get(claim.kind, {}).get(claim.subject_id)
        if record is None:
            raise CannotRender("record_missing", f"Nothing to render for {claim.kind} {claim.id}.")
        envelope = Envelope(claim.to_address, claim.message_id, self.clock.now())
        return kind.render(self.renderer, record, envelope), claim.to_address

    async def _failed(self, claim: service.Claim, code: str, *, permanent: bool) -> DeliveryStatus:
        """Record a failed attempt at once: `retrying` after a backoff, or `dead`."""
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


class _Unrenderable(Exception):
    """Cannot be rendered by this worker now; another attempt may (recorded with `code`)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass
class _Send:
    """A rendered message waiting for, or in, a connection's SMTP dialogue."""

    claim: service.Claim
    email: EmailMessage
    recipient: str
    outcome: "asyncio.Future[DeliveryStatus]"


class _Autocommit:
    """A connection of one task's own in autocommit mode, kept for a stretch of sending, so
    that neither a commit nor the pool's check-out costs a round trip each time it is used.
    After a failure it is discarded (it may be dead) and the next use takes a fresh one."""

    def __init__(self, worker: OutboxWorker) -> None:
        engine = worker.sessionmaker().bind
        assert isinstance(engine, AsyncEngine)
        self.engine = engine
        self.connection: AsyncConnection | None = None

    async def get(self) -> AsyncConnection:
        if self.connection is None:
            connection = await self.engine.connect()
            try:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
            except BaseException:
                await connection.close()
                raise
            self.connection = connection
        return self.connection

    async def close(self, *, failed: bool = False) -> None:
        """Give the connection back; after a failure, discard it."""
        connection, self.connection = self.connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                if failed:
                    await connection.invalidate()
            await connection.close()


class _Delivery:
    """One stretch of sending, for `run_once`, `drain` or a busy spell of `run`.

    - The caller's task claims batches and renders each message just before it is queued;
      at most one message per connection waits rendered, so rendering goes on while earlier
      messages are in the SMTP dialogue, and a message waits milliseconds between its
      rendering and its sending.
    - One sender task per connection takes the next message, checks that its lease still has
      time, sends it, and records a failure at once or hands an acceptance to the recorder
      and waits for it to be recorded before its next dialogue.
    - The recorder writes acceptances as they come: one statement for all that are waiting,
      so that no accepted message waits for another message's send.
    - The heartbeat renews the lease of every message held (claimed, outcome not recorded)
      every quarter lease, in one statement.
    """

    def __init__(self, worker: OutboxWorker, stop: asyncio.Event | None = None) -> None:
        self.worker = worker
        self.stop = stop or asyncio.Event()
        self.lease = worker.settings.outbox_lease_seconds
        self.connections = connections_for(worker.backend, worker.settings)
        self.ready: asyncio.Queue[_Send | None] = asyncio.Queue()
        self.room = asyncio.Semaphore(self.connections)  # rendered messages allowed to wait
        self.expires: dict[uuid.UUID, datetime] = {}  # the claims held, to their lease's end
        self.renewing = asyncio.Lock()
        self.accepted: list[_Send] = []
        self.acceptance = asyncio.Event()
        self.claiming = _Autocommit(worker)  # the claims', for the caller's task
        self.recording = _Autocommit(worker)  # the recorder's
        self.closing = False
        self.give_back: list[tuple[service.Claim, asyncio.Future[DeliveryStatus]]] = []
        self.outcomes: list[asyncio.Future[DeliveryStatus]] = []  # every one handed out
        self.senders: list[asyncio.Task[None]] = []
        self.helpers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> "_Delivery":
        self.senders = [
            asyncio.create_task(self._sender(), name=f"outbox-send-{n}")
            for n in range(self.connections)
        ]
        self.helpers = [
            asyncio.create_task(self._recorder(), name="outbox-record"),
            asyncio.create_task(self._heartbeat(), name="outbox-lease"),
        ]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        tasks = [*self.senders, *self.helpers]
        try:
            if exc_type is None or issubclass(exc_type, Exception):
                # What is queued is sent (or given back when stopping), then recorded.
                for _ in self.senders:
                    self.ready.put_nowait(None)
                await asyncio.gather(*self.senders)
                self.closing = True
                self.acceptance.set()
                await self.helpers[0]
                await self._give_back()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.claiming.close()
            for _ in range(self.ready.qsize()):
                if (send := self.ready.get_nowait()) is not None:
                    self._left_to_lease(send.claim, send.outcome)
            for send in self.accepted:
                self._left_to_lease(send.claim, send.outcome)
            for claim, outcome in self.give_back:
                self._left_to_lease(claim, outcome)
            for outcome in self.outcomes:  # e.g. a sender that failed unexpectedly
                if not outcome.done():
                    outcome.set_result(DeliveryStatus.sending)

    async def submit_batch(self) -> list["asyncio.Future[DeliveryStatus]"]:
        """Claim a batch and queue its messages, rendered, for the connections; returns each
        message's outcome to come (empty when nothing was due)."""
        worker = self.worker
        now = worker.clock.now()
        try:
            claims = await service.claim(
                await self.claiming.get(),
                owner=worker.owner,
                now=now,
                lease_seconds=self.lease,
                max_attempts=worker.settings.outbox_max_attempts,
                limit=worker.batch_size,
            )
        except Exception:
            await self.claiming.close(failed=True)
            raise
        loop = asyncio.get_running_loop()
        outcomes: list[asyncio.Future[DeliveryStatus]] = [loop.create_future() for _ in claims]
        self.outcomes += outcomes
        if not claims:
            return outcomes
        for claim in claims:
            self.expires[claim.id] = now + timedelta(seconds=self.lease)
        try:
            records = await worker._read(claims, await self.claiming.get())
        except Exception:
            logger.exception("outbox: reading a batch of %d failed", len(claims))
            await self.claiming.close(failed=True)
            for claim, outcome in zip(claims, outcomes, strict=True):
                status = await worker._failed(claim, "render_failed", permanent=False)
                self._done(claim, outcome, status)
            return outcomes
        for claim, outcome in zip(claims, outcomes, strict=True):
            if self.stop.is_set():
                self.give_back.append((claim, outcome))
                continue
            await self.room.acquire()
            try:
                email, recipient = worker._render(claim, records)
            except CannotRender as exc:
                self.room.release()
                logger.warning("outbox %s cannot be rendered: %s", claim.id, exc.code)
                self._done(claim, outcome, await worker._failed(claim, exc.code, permanent=True))
                continue
            except _Unrenderable as exc:
                self.room.release()
                logger.warning("outbox %s cannot be rendered here: %s", claim.id, exc.code)
                self._done(claim, outcome, await worker._failed(claim, exc.code, permanent=False))
                continue
            except Exception:
                self.room.release()
                # e.g. a template an operator broke: retried, and dead once attempts run out.
                logger.exception("outbox %s: rendering failed", claim.id)
                status = await worker._failed(claim, "render_failed", permanent=False)
                self._done(claim, outcome, status)
                continue
            self.ready.put_nowait(_Send(claim, email, recipient, outcome))
        return outcomes

    def _done(
        self,
        claim: service.Claim,
        outcome: "asyncio.Future[DeliveryStatus]",
        status: DeliveryStatus,
    ) -> None:
        self.expires.pop(claim.id, None)
        if not outcome.done():
            outcome.set_result(status)

    def _left_to_lease(
        self, claim: service.Claim, outcome: "asyncio.Future[DeliveryStatus]"
    ) -> None:
        """Not tried, or its outcome could not be recorded: the claim runs out and another
        round takes the message again (with the same Message-ID)."""
        self._done(claim, outcome, DeliveryStatus.sending)

    def _lease_left(self, claim: service.Claim) -> float:
        expires = self.expires.get(claim.id)
        return (expires - self.worker.clock.now()).total_seconds() if expires else 0.0

    async def _lease_allows_send(self, claim: service.Claim) -> bool:
        """Whether half a lease is left at least (time for the dialogue, and for the renewals to
        go on); if not, the leases are renewed first (e.g. when rendering held up the loop)."""
        if self._lease_left(claim) >= self.lease / 2:
            return True
        await self._renew()
        return self._lease_left(claim) >= self.lease / 2

    async def _sender(self) -> None:
        worker = self.worker
        async with one_connection(worker.backend) as backend:
            # The last acceptance over this connection, until it is recorded: the next
            # message's envelope goes meanwhile, its data only once that record is made, so
            # that a worker dying leaves at most one message per connection accepted by the
            # relay but not recorded.
            recorded: asyncio.Future[DeliveryStatus] | None = None
            while (send := await self.ready.get()) is not None:
                self.room.release()
                claim = send.claim
                if self.stop.is_set():
                    self.give_back.append((claim, send.outcome))
                    continue
                if not await self._lease_allows_send(claim):
                    logger.warning(
                        "outbox %s not sent: its claim could not be renewed in time", claim.id
                    )
                    self._left_to_lease(claim, send.outcome)
                    continue
                # No session is open: nothing is held while the mail server takes its time.
                try:
                    await send_when(
                        backend,
                        send.email,
                        sender=worker.settings.email_from,
                        recipient=send.recipient,
                        ready=recorded,
                    )
                except DeliveryError as exc:
                    logger.warning(
                        "outbox %s attempt %d failed: %s %s",
                        claim.id,
                        claim.attempts,
                        exc.code,
                        exc,
                    )
                    await self._record_failure(send, exc.code, permanent=exc.permanent)
                except Exception:
                    logger.exception(
                        "outbox %s attempt %d failed unexpectedly", claim.id, claim.attempts
                    )
                    await self._record_failure(send, "unexpected_error", permanent=False)
                else:
                    self.accepted.append(send)
                    self.acceptance.set()
                    recorded = asyncio.shield(send.outcome)
            if recorded is not None:
                await recorded

    async def _record_failure(self, send: _Send, code: str, *, permanent: bool) -> None:
        try:
            status = await self.worker._failed(send.claim, code, permanent=permanent)
        except Exception:
            logger.exception("outbox %s: recording the failed attempt failed", send.claim.id)
            self._left_to_lease(send.claim, send.outcome)
            return
        self._done(send.claim, send.outcome, status)

    async def _recorder(self) -> None:
        """Record acceptances as they come, all that are waiting in one statement, over one
        connection kept for the stretch in autocommit mode (one round trip a record)."""
        try:
            await self._record_acceptances()
        finally:
            await self.recording.close()

    async def _record_acceptances(self) -> None:
        worker = self.worker
        failures = 0
        while True:
            await self.acceptance.wait()
            self.acceptance.clear()
            if not self.accepted:
                if self.closing:
                    return
                continue
            sends, self.accepted = self.accepted, []
            try:
                connection = await self.recording.get()
                recorded = await service.record_sent(
                    connection, [s.claim.id for s in sends], now=worker.clock.now()
                )
            except Exception:
                logger.exception("outbox: recording %d sent messages failed", len(sends))
                # A new connection for the next try.
                await self.recording.close(failed=True)
                failures += 1
                if self.closing or self.stop.is_set() or failures >= RECORD_TRIES:
                    # Given up: the leases run out, and these go again (same Message-IDs).
                    for send in sends:
                        self._left_to_lease(send.claim, send.outcome)
                    if self.closing and not self.accepted:
                        return
                    continue
                self.accepted[:0] = sends
                await asyncio.sleep(1)
                self.acceptance.set()
                continue
            failures = 0
            for send in sends:
                claim = send.claim
                if claim.id in recorded:
                    logger.info("outbox %s sent (attempt %d)", claim.id, claim.attempts)
                else:
                    logger.warning(
                        "outbox %s sent again: it was already recorded as sent (attempt %d)",
                        claim.id,
                        claim.attempts,
                    )
                metrics.record_delivery("sent")
                self._done(claim, send.outcome, DeliveryStatus.sent)
            if self.closing and not self.accepted:
                return

    async def _heartbeat(self) -> None:
        """Renew the leases of the messages held, every quarter lease, until cancelled."""
        while True:
            await asyncio.sleep(self.lease / 4)
            await self._renew()

    async def _renew(self) -> None:
        """Renew the lease of every message held, in one statement (one renewal at a time)."""
        worker = self.worker
        async with self.renewing:
            ids = list(self.expires)
            if not ids:
                return
            try:
                async with worker.sessionmaker() as session:
                    held, expires_at = await service.extend_leases(
                        session,
                        ids,
                        owner=worker.owner,
                        now=worker.clock.now(),
                        lease_seconds=self.lease,
                    )
            except Exception:
                # Nothing more is begun once less than half a lease is left (see the senders).
                logger.warning("outbox worker %s: renewing its leases failed", worker.owner)
                return
            for outbox_id in ids:
                if outbox_id not in self.expires:
                    continue  # its outcome was recorded meanwhile
                if outbox_id in held:
                    self.expires[outbox_id] = expires_at
                else:  # taken over after a lapse: not to be sent by this worker any more
                    del self.expires[outbox_id]

    async def _give_back(self) -> None:
        if not self.give_back:
            return
        claims, self.give_back = self.give_back, []
        try:
            async with self.worker.sessionmaker() as session:
                await service.release(session, [c.id for c, _ in claims], owner=self.worker.owner)
        except Exception:
            logger.exception("outbox: giving back %d claims failed", len(claims))
            for claim, outcome in claims:
                self._left_to_lease(claim, outcome)
            return
        logger.info("outbox worker %s gave back %d claims", self.worker.owner, len(claims))
        for claim, outcome in claims:
            self._done(claim, outcome, DeliveryStatus.pending)
