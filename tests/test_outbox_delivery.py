"""The outbox against a real SMTP server (aiosmtpd on a free local port): delivery, a server
that is down, temporary and permanent refusals, a worker that dies holding a claim, two workers
sharing one queue, TLS and login, the worker inside the app, and the operators' commands."""

import asyncio
import io
import os
import random
import signal
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import trustme
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.core.clock import FixedClock
from app.core.database import make_engine
from app.core.settings import PROJECT_ROOT, Settings, get_settings
from app.main import create_app
from app.outbox import service
from app.outbox.backends import ConsoleBackend, make_backend
from app.outbox.models import OutboxMessage
from app.outbox.worker import MAX_BACKOFF_SECONDS, backoff_seconds
from tests.conftest import Key
from tests.outbox_support import (
    SmtpServer,
    approval_copy,
    autocommit,
    eml_files,
    password_checker,
    request_callback,
    server_tls_context,
    worker,
)


@pytest.fixture
def smtp_server():  # type: ignore[no-untyped-def]
    server = SmtpServer().start()
    yield server
    server.stop()


async def _rows(app) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


async def _delivery(client: httpx.AsyncClient, key: Key, callback_id: uuid.UUID) -> dict:  # type: ignore[type-arg]
    response = await client.get(f"/v1/callbacks/{callback_id}", headers=key.headers)
    assert response.status_code == 200, response.text
    return response.json()["delivery"]  # type: ignore[no-any-return]


async def test_call_back_requests_and_feedback_arrive_at_a_real_smtp_server(
    client,
    app,
    settings: Settings,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    smtp_server: SmtpServer,
) -> None:
    to_lgsco_id = await request_callback(client, cqc_agent, clock)
    await request_callback(client, lgsco_agent, clock)
    feedback = await client.post(
        "/v1/feedback",
        json={
            "about_org": "lgsco",
            "case_references": ["CAS-9"],
            "reason_for_contact": "Fees.",
            "names_and_times": "A. Adviser, 10:00",
            "correct_advice": "Go to LGSCO.",
            "suggested_action": "None.",
        },
        headers=cqc_agent.headers,
    )
    assert feedback.status_code == 201, feedback.text

    outcomes = await worker(app, smtp_server.settings(settings)).drain()

    assert outcomes == {"sent": 3}
    rows = {r.to_address: r for r in await _rows(app)}
    by_to = {r.rcpt_tos[0]: r for r in smtp_server.received}
    assert sorted(by_to) == [
        "concerns@cqc.org.uk",
        "intake@lgo.org.uk",
        "intakemanagers@lgo.org.uk",
    ]
    for to, received in by_to.items():
        assert received.rcpt_tos == [to]
        assert received.mail_from == "handoff@localhost"
        assert received.message["To"] == to
        assert received.message["Message-ID"] == rows[to].message_id
        assert received.message.get_content_type() == "multipart/alternative"
    to_lgsco = by_to["intake@lgo.org.uk"]
    text, html = approval_copy(to_lgsco.message)
    assert text == (
        Path(__file__).parent / "approved" / "callback_request_cqc_to_lgsco.txt"
    ).read_text(encoding="utf-8").replace("11:59:59", "10:00:00")
    assert "<p>Name: Ada Lovelace</p>" in html
    assert "Feedback from CQC" in by_to["intakemanagers@lgo.org.uk"].message["Subject"]
    assert await _delivery(client, cqc_agent, to_lgsco_id) == {
        "status": "sent",
        "attempts": 1,
        "last_error_code": None,
        "sent_at": "2026-11-10T10:00:00Z",
    }


@pytest.mark.parametrize("connections", [1, 4])
async def test_mail_server_down_for_the_first_drain_loses_nothing_and_sends_each_once(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key, connections: int
) -> None:
    server = SmtpServer()  # its port is chosen, but nothing listens there yet
    smtp = server.settings(settings, smtp_timeout_seconds=2, smtp_connections=connections)
    ids = [await request_callback(client, cqc_agent, clock, reference=f"CQC-{n}") for n in range(5)]

    assert await worker(app, smtp).drain() == {"retrying": 5}
    for callback_id in ids:
        delivery = await _delivery(client, cqc_agent, callback_id)
        assert delivery == {
            "status": "retrying",
            "attempts": 1,
            "last_error_code": "smtp_connect_failed",
            "sent_at": None,
        }
    for row in await _rows(app):
        # First retry after the base delay (30 s) give or take the 25% jitter.
        assert (
            timedelta(seconds=22.5) <= row.next_attempt_at - clock.now() <= timedelta(seconds=37.5)
        )
    assert await worker(app, smtp).drain() == {}, "nothing is due before its retry time"

    server.start()
    try:
        clock.advance(40)
        assert await worker(app, smtp).drain() == {"sent": 5}
        assert await worker(app, smtp).drain() == {}
    finally:
        server.stop()
    received = Counter(r.message["Message-ID"] for r in server.received)
    assert sorted(received.values()) == [1] * 5
    assert set(received) == {r.message_id for r in await _rows(app)}
    for callback_id in ids:
        delivery = await _delivery(client, cqc_agent, callback_id)
        assert (delivery["status"], delivery["attempts"]) == ("sent", 2)


async def test_a_4xx_reply_is_retried_and_a_5xx_reply_is_final(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key, smtp_server: SmtpServer
) -> None:
    callback_id = await request_callback(client, cqc_agent, clock)
    smtp = smtp_server.settings(settings)

    smtp_server.handler.refuse_with = "450 4.2.1 Mailbox busy, try later"
    assert await worker(app, smtp).drain() == {"retrying": 1}
    assert (await _delivery(client, cqc_agent, callback_id))["last_error_code"] == "smtp_450"

    smtp_server.handler.refuse_with = "550 5.1.1 No such mailbox"
    clock.advance(60)
    assert await worker(app, smtp).drain() == {"dead": 1}
    assert await _delivery(client, cqc_agent, callback_id) == {
        "status": "dead",
        "attempts": 2,
        "last_error_code": "smtp_550",
        "sent_at": None,
    }
    clock.advance(24 * 3600)
    assert await worker(app, smtp).drain() == {}, "a dead message waits for an operator"
    assert smtp_server.received == []


async def test_temporary_failures_end_in_dead_when_the_attempts_run_out(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key, smtp_server: SmtpServer
) -> None:
    callback_id = await request_callback(client, cqc_agent, clock)
    smtp = smtp_server.settings(settings, outbox_max_attempts=3)
    smtp_server.handler.refuse_with = "421 4.3.2 Service shutting down"

    outcomes = []
    for _ in range(3):
        outcomes += await worker(app, smtp).run_once()
        clock.advance(3600)

    assert outcomes == ["retrying", "retrying", "dead"]
    assert await _delivery(client, cqc_agent, callback_id) == {
        "status": "dead",
        "attempts": 3,
        "last_error_code": "smtp_421",
        "sent_at": None,
    }


@pytest.mark.parametrize("attempts", range(1, 12))
def test_backoff_doubles_with_jitter_and_a_ceiling(attempts: int) -> None:
    rng = random.Random(attempts)
    delays = [backoff_seconds(attempts, 30.0, rng) for _ in range(200)]
    nominal = min(30.0 * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
    assert all(0.75 * nominal <= d <= 1.25 * nominal for d in delays)
    assert len({round(d, 3) for d in delays}) > 100, "jitter spreads the retries"


async def test_a_worker_that_dies_holding_a_claim_loses_it_when_the_lease_expires(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key, smtp_server: SmtpServer
) -> None:
    callback_id = await request_callback(client, cqc_agent, clock)
    smtp = smtp_server.settings(settings)
    async with autocommit(app) as connection:
        # The first worker claims the message and dies before sending it.
        [claimed] = await service.claim(
            connection,
            owner="dead-worker",
            now=clock.now(),
            lease_seconds=120,
            max_attempts=8,
            limit=10,
        )
    assert (await _delivery(client, cqc_agent, callback_id))["status"] == "sending"

    assert await worker(app, smtp).drain() == {}, "the claim holds until its lease expires"
    clock.advance(121)
    assert await worker(app, smtp).drain() == {"sent": 1}

    assert len(smtp_server.received) == 1
    delivery = await _delivery(client, cqc_agent, callback_id)
    assert delivery["status"] == "sent"
    assert delivery["attempts"] == 2
    assert delivery["last_error_code"] == "lease_expired"
    async with app.state.sessionmaker() as session:
        # Had the first worker only been slow, its late report changes nothing.
        assert not await service.mark_sent(session, claimed.id, now=clock.now())


class HeldByTheRelay:
    """A backend whose relay accepts each message only when the test says so."""

    def __init__(self) -> None:
        self.in_dialogue = asyncio.Event()
        self.accept = asyncio.Event()
        self.accepted = 0

    async def send(self, message, *, sender: str, recipient: str) -> None:  # type: ignore[no-untyped-def]
        self.in_dialogue.set()
        await self.accept.wait()
        self.accepted += 1


async def test_an_acceptance_recorded_after_the_claim_ran_out_is_still_sent_never_dead(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key
) -> None:
    callback_id = await request_callback(client, cqc_agent, clock)
    last_try = settings.model_copy(update={"outbox_max_attempts": 1})
    relay = HeldByTheRelay()
    slow = asyncio.create_task(worker(app, last_try, backend=relay, owner="slow").drain())
    await asyncio.wait_for(relay.in_dialogue.wait(), 30)

    # Its lease runs out mid-dialogue (no renewal came); on its last attempt it goes dead.
    clock.advance(121)
    assert await worker(app, last_try, owner="other").drain() == {}
    assert (await _delivery(client, cqc_agent, callback_id))["status"] == "dead"

    relay.accept.set()  # the relay accepts it after all
    assert await asyncio.wait_for(slow, 30) == {"sent": 1}
    assert relay.accepted == 1
    delivery = await _delivery(client, cqc_agent, callback_id)
    assert (delivery["status"], delivery["attempts"]) == ("sent", 1)
    assert delivery["sent_at"] == "2026-11-10T10:02:01Z"


async def test_a_worker_told_to_stop_finishes_its_dialogue_and_gives_back_the_rest(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key
) -> None:
    ids = [await request_callback(client, cqc_agent, clock, reference=f"CQC-{n}") for n in range(3)]
    relay = HeldByTheRelay()
    stop = asyncio.Event()
    running = asyncio.create_task(worker(app, settings, backend=relay).run(stop))
    await asyncio.wait_for(relay.in_dialogue.wait(), 30)

    stop.set()  # e.g. SIGTERM to `handoff outbox work`
    relay.accept.set()
    await asyncio.wait_for(running, 30)

    assert relay.accepted == 1
    deliveries = [await _delivery(client, cqc_agent, callback_id) for callback_id in ids]
    assert sorted((d["status"], d["attempts"]) for d in deliveries) == [
        ("pending", 0),
        ("pending", 0),
        ("sent", 1),
    ], "the two not begun are queued again, their attempt not counted"
    assert await worker(app, settings).drain() == {"sent": 2}


async def test_a_lease_that_expires_on_the_last_attempt_makes_the_message_dead(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key
) -> None:
    callback_id = await request_callback(client, cqc_agent, clock)
    async with autocommit(app) as connection:
        await service.claim(
            connection,
            owner="dead-worker",
            now=clock.now(),
            lease_seconds=120,
            max_attempts=1,
            limit=10,
        )
    clock.advance(121)

    assert await worker(app, settings.model_copy(update={"outbox_max_attempts": 1})).drain() == {}

    assert await _delivery(client, cqc_agent, callback_id) == {
        "status": "dead",
        "attempts": 1,
        "last_error_code": "lease_expired",
        "sent_at": None,
    }


HANGING_WORKER = """
import asyncio, sys
from app.core.clock import Clock
from app.core.database import make_engine, make_sessionmaker
from app.core.settings import Settings
from app.wiring import outbox_worker as OutboxWorker  # with the email kinds registered
from app.protocol.routes import load_table

class Hangs:
    async def send(self, message, *, sender, recipient):
        print("claimed", flush=True)
        await asyncio.sleep(3600)

async def main():
    settings = Settings(database_url=sys.argv[1], outbox_lease_seconds=1, _env_file=None)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    await OutboxWorker(sessions, settings, load_table(), Clock(), backend=Hangs()).run_once()

asyncio.run(main())
"""


async def test_a_worker_process_killed_after_claiming_does_not_lose_the_message(
    client,
    app,
    settings: Settings,
    clock: FixedClock,
    cqc_agent: Key,
    smtp_server: SmtpServer,
    database_url: str,
) -> None:
    clock.set(datetime.now(UTC))  # the other process claims on the real clock
    callback_id = await request_callback(client, cqc_agent, clock)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HANGING_WORKER,
        database_url,
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert line.strip() == b"claimed"
    process.send_signal(signal.SIGKILL)
    await process.wait()
    assert (await _delivery(client, cqc_agent, callback_id))["status"] == "sending"

    clock.set(datetime.now(UTC) + timedelta(seconds=2))  # past the killed worker's 1 s lease
    assert await worker(app, smtp_server.settings(settings)).drain() == {"sent": 1}

    assert [r.rcpt_tos for r in smtp_server.received] == [["intake@lgo.org.uk"]]
    delivery = await _delivery(client, cqc_agent, callback_id)
    assert (delivery["status"], delivery["attempts"]) == ("sent", 2)


async def test_two_workers_drain_200_messages_concurrently_and_send_each_once(
    client,
    app,
    settings: Settings,
    clock: FixedClock,
    cqc_agent: Key,
    smtp_server: SmtpServer,
    database_url: str,
) -> None:
    for n in range(200):
        await request_callback(client, cqc_agent, clock, reference=f"CQC-{n}")
    smtp = smtp_server.settings(settings)
    # Each worker has its own engine and connections, as two processes would.
    engines = [make_engine(database_url), make_engine(database_url)]
    try:
        workers = [
            worker(app, smtp, engine=engine, owner=f"worker-{i}", batch_size=5)
            for i, engine in enumerate(engines)
        ]
        results = await asyncio.gather(*(w.drain() for w in workers))
    finally:
        for engine in engines:
            await engine.dispose()

    assert sum(r["sent"] for r in results) == 200
    assert all(r["sent"] > 0 for r in results), f"both workers took part: {results}"
    received = Counter(r.message["Message-ID"] for r in smtp_server.received)
    assert len(received) == 200
    assert set(received.values()) == {1}, "no message was sent twice"
    rows = await _rows(app)
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}


async def test_with_one_connection_a_batch_shares_it(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key, smtp_server: SmtpServer
) -> None:
    ids = [
        await request_callback(client, cqc_agent, clock, reference=f"CQC-{n}") for n in range(12)
    ]

    smtp = worker(app, smtp_server.settings(settings, smtp_connections=1), batch_size=5)

    # The batch size holds on PostgreSQL too (its claim must not take more than it asks for).
    assert [await smtp.run_once() for _ in range(4)] == [
        ["sent"] * 5,
        ["sent"] * 5,
        ["sent"] * 2,
        [],
    ]

    # One connection per batch, every message received once.
    assert len({id(r.connection) for r in smtp_server.received}) == 3
    assert (
        sorted(Counter(r.message["Message-ID"] for r in smtp_server.received).values()) == [1] * 12
    )
    for callback_id in ids:
        delivery = await _delivery(client, cqc_agent, callback_id)
        assert (delivery["status"], delivery["attempts"]) == ("sent", 1)


async def test_a_drain_sends_over_as_many_connections_at_once_as_set(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key, smtp_server: SmtpServer
) -> None:
    ids = [
        await request_callback(client, cqc_agent, clock, reference=f"CQC-{n}") for n in range(12)
    ]
    # The relay holds each message in DATA until 4 are there together (or 3 s have passed).
    smtp_server.handler.wait_for_together = 4
    smtp_server.handler.delay = 3

    outcomes = await worker(
        app, smtp_server.settings(settings, smtp_connections=4), batch_size=5
    ).drain()

    assert outcomes == {"sent": 12}
    assert smtp_server.handler.most_in_dialogue == 4, "four messages in the dialogue at once"
    # The connections stay open across batches: four for the whole drain.
    assert len({id(r.connection) for r in smtp_server.received}) == 4
    received = Counter(r.message["Message-ID"] for r in smtp_server.received)
    assert received == Counter({r.message_id: 1 for r in await _rows(app)})
    for callback_id in ids:
        delivery = await _delivery(client, cqc_agent, callback_id)
        assert (delivery["status"], delivery["attempts"]) == ("sent", 1)


async def test_on_a_shared_connection_each_message_keeps_its_own_outcome(
    client,
    app,
    settings: Settings,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    smtp_server: SmtpServer,
) -> None:
    to_lgsco = [
        await request_callback(client, cqc_agent, clock, reference=f"CQC-{n}") for n in range(4)
    ]
    to_cqc = [
        await request_callback(client, lgsco_agent, clock, reference=f"LG-{n}") for n in range(2)
    ]
    smtp_server.handler.refuse_with = "550 5.1.1 No such mailbox"
    smtp_server.handler.refuse_only = "concerns@cqc.org.uk"

    assert await worker(app, smtp_server.settings(settings)).drain() == {"sent": 4, "dead": 2}

    assert sorted(r.rcpt_tos[0] for r in smtp_server.received) == ["intake@lgo.org.uk"] * 4
    for callback_id in to_lgsco:
        assert (await _delivery(client, cqc_agent, callback_id))["status"] == "sent"
    for callback_id in to_cqc:
        delivery = await _delivery(client, lgsco_agent, callback_id)
        assert (delivery["status"], delivery["last_error_code"]) == ("dead", "smtp_550")


async def test_a_connection_the_server_closed_is_replaced_without_failing_a_message(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key, smtp_server: SmtpServer
) -> None:
    ids = [await request_callback(client, cqc_agent, clock, reference=f"CQC-{n}") for n in range(5)]
    smtp_server.handler.hang_up = True  # as a relay that closes idle connections would

    assert await worker(app, smtp_server.settings(settings)).drain() == {"sent": 5}

    assert len({id(r.connection) for r in smtp_server.received}) == 5
    assert (
        sorted(Counter(r.message["Message-ID"] for r in smtp_server.received).values()) == [1] * 5
    )
    for callback_id in ids:
        delivery = await _delivery(client, cqc_agent, callback_id)
        assert (delivery["status"], delivery["attempts"], delivery["last_error_code"]) == (
            "sent",
            1,
            None,
        )


async def test_starttls_with_login_reaches_a_server_that_requires_both(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = SmtpServer(
        tls_context=server_tls_context(ca.issue_cert("127.0.0.1")),
        require_starttls=True,
        authenticator=password_checker("handoff", "s3cret"),
        auth_required=True,
    ).start()
    try:
        smtp = server.settings(
            settings,
            smtp_starttls=True,
            smtp_username="handoff",
            smtp_password="s3cret",
            smtp_ca_file=tmp_path / "ca.pem",
        )
        callback_id = await request_callback(client, cqc_agent, clock)
        assert await worker(app, smtp).drain() == {"sent": 1}

        wrong = smtp.model_copy(update={"smtp_password": "wrong"})
        second = await request_callback(client, cqc_agent, clock, reference="CQC-2")
        assert await worker(app, wrong).drain() == {"dead": 1}
    finally:
        server.stop()
    assert len(server.received) == 1
    assert (await _delivery(client, cqc_agent, callback_id))["status"] == "sent"
    assert (await _delivery(client, cqc_agent, second))["last_error_code"] == "smtp_535"


async def test_implicit_tls_is_verified_against_the_configured_ca(
    client, app, settings: Settings, clock: FixedClock, cqc_agent: Key, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = SmtpServer(ssl_context=server_tls_context(ca.issue_cert("127.0.0.1"))).start()
    try:
        untrusted = server.settings(settings, smtp_tls=True)  # the system store lacks this CA
        await request_callback(client, cqc_agent, clock)
        assert await worker(app, untrusted).drain() == {"retrying": 1}
        assert (await _rows(app))[0].last_error_code == "smtp_tls_failed"

        clock.advance(60)
        trusted = untrusted.model_copy(update={"smtp_ca_file": tmp_path / "ca.pem"})
        assert await worker(app, trusted).drain() == {"sent": 1}
    finally:
        server.stop()
    assert len(server.received) == 1


async def test_the_worker_inside_the_app_writes_an_eml_for_a_failed_transfer(
    settings: Settings, clock: FixedClock, routes, tmp_path: Path
) -> None:
    """The embedded default: no mail server, the .eml lands in the outbox folder."""
    live = settings.model_copy(update={"outbox_worker_enabled": True, "outbox_poll_seconds": 0.05})
    application = create_app(live, clock=clock, routes=routes)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://handoff.test") as c:
            from tests.conftest import Keys

            key = await Keys(application).make("cqc", "agent")
            callback_id = await request_callback(c, key, clock)
            for _ in range(200):
                delivery = await _delivery(c, key, callback_id)
                if delivery["status"] == "sent":
                    break
                await asyncio.sleep(0.025)
            assert delivery["status"] == "sent"

    [eml] = eml_files(live.email_dir)
    assert b"Contact number: 07911 123456" in eml.read_bytes()


def test_console_backend_prints_the_message_and_unknown_backends_are_refused(
    settings: Settings,
) -> None:
    from email.message import EmailMessage

    stream = io.StringIO()
    message = EmailMessage()
    message["Subject"] = "Call back request - CQC Reference: CQC-1"
    message.set_content("Good Morning")
    asyncio.run(ConsoleBackend(stream).send(message, sender="a@x", recipient="b@y"))
    assert "Subject: Call back request - CQC Reference: CQC-1" in stream.getvalue()
    with pytest.raises(ValueError, match="unknown email_backend"):
        make_backend(settings.model_copy(update={"email_backend": "pigeon"}))


# ---- Operators' commands ----


async def _handoff(*args: str, env: dict[str, str]) -> tuple[int, str]:
    def invoke() -> tuple[int, str]:
        get_settings.cache_clear()
        try:
            result = CliRunner().invoke(cli, list(args), env=env)
        finally:
            get_settings.cache_clear()
        return result.exit_code, result.output

    return await asyncio.to_thread(invoke)


async def test_operators_list_retry_and_drain_from_the_command_line(
    client,
    app,
    settings: Settings,
    clock: FixedClock,
    cqc_agent: Key,
    database_url: str,
) -> None:
    clock.set(datetime.now(UTC))  # the commands run on the real clock
    callback_id = await request_callback(client, cqc_agent, clock)
    async with app.state.sessionmaker() as session:
        message = await session.scalar(select(OutboxMessage))
        assert message is not None
        message.status, message.last_error_code, message.attempts = "dead", "smtp_550", 1
        await session.commit()
    env = {
        "HANDOFF_DATABASE_URL": database_url,
        "HANDOFF_EMAIL_BACKEND": "file",
        "HANDOFF_EMAIL_DIR": str(settings.email_dir),
    }

    code, output = await _handoff("outbox", "list", "--status", "dead", env=env)
    assert code == 0, output
    assert str(message.id) in output and "smtp_550" in output and str(callback_id) in output

    code, output = await _handoff("outbox", "retry", str(callback_id), env=env)
    assert (code, output.strip()) == (0, f"queued {message.id}")

    code, output = await _handoff("outbox", "drain", env=env)
    assert (code, output.strip()) == (0, "1 sent")
    assert len(eml_files(settings.email_dir)) == 1

    code, output = await _handoff("outbox", "retry", str(message.id), env=env)
    assert code == 1 and "was sent" in output
    code, output = await _handoff("outbox", "retry", str(uuid.uuid4()), env=env)
    assert code == 1 and "No outbox message" in output
    code, output = await _handoff("outbox", "drain", env=env)
    assert (code, output.strip()) == (0, "nothing due")


async def test_outbox_drain_exits_1_while_a_message_is_still_unsent(
    client, settings: Settings, clock: FixedClock, cqc_agent: Key, database_url: str
) -> None:
    clock.set(datetime.now(UTC))
    await request_callback(client, cqc_agent, clock)
    env = {
        "HANDOFF_DATABASE_URL": database_url,
        "HANDOFF_EMAIL_BACKEND": "smtp",
        "HANDOFF_SMTP_HOST": "127.0.0.1",
        "HANDOFF_SMTP_PORT": str(SmtpServer().port),
    }

    code, output = await _handoff("outbox", "drain", env=env)
    assert (code, output.splitlines()) == (1, ["1 retrying", "still unsent: 1 retrying"])

    # Nothing is due until its retry time, but it is still unsent: the help's exit 1 holds.
    code, output = await _handoff("outbox", "drain", env=env)
    assert (code, output.splitlines()) == (1, ["nothing due", "still unsent: 1 retrying"])
    code, output = await _handoff("outbox", "drain", "--help", env=env)
    assert code == 0 and "1 if any message is still" in " ".join(output.split())


async def test_outbox_work_delivers_until_it_is_told_to_stop(
    client,
    settings: Settings,
    clock: FixedClock,
    cqc_agent: Key,
    database_url: str,
) -> None:
    clock.set(datetime.now(UTC))
    await request_callback(client, cqc_agent, clock)
    env = {
        **os.environ,
        "HANDOFF_DATABASE_URL": database_url,
        "HANDOFF_EMAIL_BACKEND": "file",
        "HANDOFF_EMAIL_DIR": str(settings.email_dir),
        "HANDOFF_OUTBOX_POLL_SECONDS": "0.1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app", "outbox", "work", cwd=PROJECT_ROOT, env=env
    )
    try:
        for _ in range(300):
            if eml_files(settings.email_dir):
                break
            await asyncio.sleep(0.05)
        assert len(eml_files(settings.email_dir)) == 1
    finally:
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 15)
    assert code == 0
