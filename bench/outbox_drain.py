"""Benchmark 3: the outbox worker draining call back emails to a local SMTP server.

A scratch PostgreSQL database is seeded with set-based SQL with N call back requests (5,000 by
default), each with its caller's details and a pending `outbox_messages` row, in both
directions. The SMTP server is aiosmtpd's own command with its `Sink` handler (accepts and
discards), in a process of its own, so that receiving does not take CPU from the measured
process; both sides send to the same server.

- Project: the `OutboxWorker` (what `handoff outbox drain` runs, with its default batch size)
  in this process, over N SMTP connections (`HANDOFF_SMTP_CONNECTIONS`, 4 by default): claim
  with a lease, read and render each message as of now, send, record each acceptance.
- Baselines: the same messages, rendered beforehand by the project's renderer and not timed,
  sent by a bare aiosmtplib loop over one connection, and by N such loops at once, each over
  its own connection with its share of the messages. The ratios are against both.

Runs alternate between the sides; before each project run every row is made pending again.
"""

import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

import aiosmtplib
import asyncpg

from bench.common import (
    ROOT,
    Config,
    Result,
    asyncpg_dsn,
    free_port,
    make_key,
    median,
    scratch_database,
)

# Call back requests numbered i (ids made from i); odd ones CQC to LGSCO, even ones back.
SEED = """
WITH g AS (
    SELECT i,
           CASE WHEN i % 2 = 1 THEN 'cqc' ELSE 'lgsco' END AS from_org,
           CASE WHEN i % 2 = 1 THEN 'lgsco' ELSE 'cqc' END AS to_org,
           CASE WHEN i % 2 = 1 THEN $2 ELSE $3 END AS mailbox,
           now() - interval '10 minutes' AS at
    FROM generate_series(1, $1::bigint) AS i
), t AS (
    INSERT INTO transfers (id, from_org, to_org, sender_reference, wait_started_at,
        wait_threshold_seconds, permission_to_share_at, status, failed_at, failure_reason,
        outcome_at, created_by_key_id, created_at)
    SELECT lpad(to_hex(i), 32, '0')::uuid, from_org, to_org, 'REF-' || i, at, 60,
           at - interval '1 minute', 'failed', at, 'high_call_volume', at, $4, at
    FROM g
), c AS (
    INSERT INTO callback_requests (id, transfer_id, from_org, to_org, reason, sender_reference,
        permission_to_share_at, mailbox, requested_at, created_by_key_id, created_at,
        first_attempt_due_at, close_due_at)
    SELECT ('1' || lpad(to_hex(i), 31, '0'))::uuid, lpad(to_hex(i), 32, '0')::uuid, from_org,
           to_org, 'high_call_volume', 'REF-' || i, at - interval '1 minute', mailbox, at, $4, at,
           at + interval '4 hours', at + interval '16 hours'
    FROM g
), d AS (
    INSERT INTO caller_details (callback_request_id, name, contact_number, provider)
    SELECT ('1' || lpad(to_hex(i), 31, '0'))::uuid, 'Ada Lovelace', '+447911123456',
           'Sunrise Care Home'
    FROM g
)
INSERT INTO outbox_messages (id, kind, subject_id, to_address, message_id, status,
    attempts, next_attempt_at, created_at)
SELECT ('2' || lpad(to_hex(i), 31, '0'))::uuid, 'callback_request',
       ('1' || lpad(to_hex(i), 31, '0'))::uuid, mailbox,
       '<' || ('2' || lpad(to_hex(i), 31, '0'))::uuid || '@' || $5 || '>', 'pending', 0, at, at
FROM g
"""

# Every message due again (the first `$1` by id; the rest as if already sent).
RESET = """
UPDATE outbox_messages SET
    status = CASE WHEN id IN (SELECT id FROM outbox_messages ORDER BY id LIMIT $1)
                  THEN 'pending' ELSE 'sent' END,
    attempts = 0, lease_owner = NULL, lease_expires_at = NULL, last_error_code = NULL,
    last_error_at = NULL, sent_at = NULL, next_attempt_at = now() - interval '1 minute'
"""


@contextmanager
def smtp_sink() -> Iterator[int]:
    """aiosmtpd's command with its Sink handler, on a free loopback port; yields the port."""
    port = free_port()
    # Its log goes to a file, not to a pipe nobody reads (which could fill up and block it).
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aiosmtpd",
            "-n",
            "-c",
            "aiosmtpd.handlers.Sink",
            "-l",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"aiosmtpd exited: {log.read().decode()[-4000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("aiosmtpd did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def _settings(db_url: str, port: int, connections: int = 4):  # type: ignore[no-untyped-def]
    from app.core.settings import Settings

    return Settings(
        database_url=db_url,
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_connections=connections,
        _env_file=None,  # type: ignore[call-arg]
    )


async def _seed(db_url: str, port: int, count: int, key_id: object) -> None:
    from app.outbox.service import message_id_domain
    from app.protocol.routes import load_table

    routes = load_table()
    to_lgsco = routes.route("cqc", "lgsco").callback_mailbox  # type: ignore[union-attr]
    to_cqc = routes.route("lgsco", "cqc").callback_mailbox  # type: ignore[union-attr]
    domain = message_id_domain(_settings(db_url, port))
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        await connection.execute(SEED, count, to_lgsco, to_cqc, key_id, domain)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


async def _reset(db_url: str, due: int) -> None:
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        await connection.execute(RESET, due)
    finally:
        await connection.close()


async def _project(db_url: str, port: int, expected: int, connections: int) -> float:
    """Seconds for the worker to drain `expected` due messages; every one must be sent."""
    from app.core.clock import Clock
    from app.core.database import make_engine, make_sessionmaker
    from app.outbox.worker import OutboxWorker
    from app.protocol.routes import load_table
    from app.wiring import wire

    settings = _settings(db_url, port, connections)
    wire(settings)  # the email kinds, as create_app and the CLI register them
    engine = make_engine(db_url)
    try:
        worker = OutboxWorker(make_sessionmaker(engine), settings, load_table(), Clock())
        started = time.perf_counter()
        outcomes = await worker.drain()
        took = time.perf_counter() - started
    finally:
        await engine.dispose()
    if outcomes != Counter({"sent": expected}):
        raise RuntimeError(f"the worker's drain ended with {dict(outcomes)}, not {expected} sent")
    return took


async def _rendered(db_url: str, port: int) -> list[tuple[EmailMessage, str]]:
    """Every message as the worker would send it, rendered once by the project's renderer."""
    from sqlalchemy import select

    from app.callbacks.emails import KIND, render_callback_request
    from app.callbacks.models import CallbackRequest, CallerDetails
    from app.core.clock import Clock
    from app.core.database import make_engine, make_sessionmaker
    from app.outbox.models import OutboxMessage
    from app.outbox.rendering import Renderer
    from app.protocol.routes import load_table

    settings = _settings(db_url, port)
    renderer = Renderer(settings.email_templates_dir, settings.email_from, load_table())
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(OutboxMessage, CallbackRequest, CallerDetails)
                .join(CallbackRequest, CallbackRequest.id == OutboxMessage.subject_id)
                .join(CallerDetails, CallerDetails.callback_request_id == CallbackRequest.id)
                .where(OutboxMessage.kind == KIND)
                .order_by(OutboxMessage.id)
            )
            now = Clock().now()
            return [
                (
                    render_callback_request(
                        renderer,
                        callback,
                        caller,
                        to_address=m.to_address,
                        message_id=m.message_id,
                        now=now,
                    ).email_message(),  # built here, not in the timed loop
                    m.to_address,
                )
                for m, callback, caller in rows.tuples()
            ]
    finally:
        await engine.dispose()


async def _bare_loop(port: int, messages: list[tuple[EmailMessage, str]], sender: str) -> None:
    async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False) as client:
        for message, recipient in messages:
            errors, _ = await client.send_message(message, sender=sender, recipients=[recipient])
            if errors:
                raise RuntimeError(f"refused: {errors}")


async def _baseline(
    port: int, messages: list[tuple[EmailMessage, str]], sender: str, connections: int
) -> float:
    """Seconds for `connections` bare aiosmtplib loops at once, each over its own connection
    with every `connections`-th message, to send `messages`."""
    started = time.perf_counter()
    await asyncio.gather(
        *(_bare_loop(port, messages[n::connections], sender) for n in range(connections))
    )
    return time.perf_counter() - started


def run(config: Config) -> list[Result]:
    count = config.outbox_messages
    warmup = min(config.outbox_warmup, count)
    connections = config.outbox_connections
    sides = ("project", "baseline, 1 connection", f"baseline, {connections} connections")
    rates: dict[str, list[float]] = {side: [] for side in sides}
    with scratch_database(config.db_url, "ob") as db_url, smtp_sink() as port:
        key_id, _ = make_key(db_url, "agent")
        asyncio.run(_seed(db_url, port, count, key_id))
        messages = asyncio.run(_rendered(db_url, port))
        sender = _settings(db_url, port).email_from
        for attempt in range(config.runs + 1):  # the first run is a short warm-up
            due = warmup if attempt == 0 else count
            asyncio.run(_reset(db_url, due))
            took = {
                sides[0]: asyncio.run(_project(db_url, port, due, connections)),
                sides[1]: asyncio.run(_baseline(port, messages[:due], sender, 1)),
                sides[2]: asyncio.run(_baseline(port, messages[:due], sender, connections)),
            }
            if attempt:
                for side in sides:
                    rates[side].append(due / took[side])
    project = median(rates[sides[0]])
    return [
        Result(
            benchmark="outbox_drain",
            metric=f"emails/s, {count} callbacks, {connections} conn vs {baseline}",
            unit="msg/s",
            project=project,
            baseline=median(rates[side]),
            target=target,
            runs={"project": rates[sides[0]], "baseline": rates[side]},
        )
        for side, baseline, target in [
            (sides[1], "1 bare conn", ">= 1.0x"),
            (sides[2], f"{connections} bare conn", ">= 0.8x"),
        ]
    ]
