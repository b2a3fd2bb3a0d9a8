"""The outbox under real faults, with real `handoff outbox work` processes and a real SMTP
server (aiosmtpd): a relay slower than the lease, a worker killed with SIGKILL mid-drain.

Runs on a SQLite file in the default suite, and on PostgreSQL when TEST_DATABASE_URL is set.
The workers run on the real clock, so the call back requests are made on it too."""

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.core.clock import FixedClock
from app.outbox.models import OutboxMessage
from tests.conftest import PG_URL, Key
from tests.outbox_support import SmtpServer, request_callback
from tests.server import clean_env, script

SETTLE_SECONDS = 180  # a generous bound on a loaded 2-core machine, never an assertion


class Workers:
    """`handoff outbox work` processes, each with its own log; all killed at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            log = (self.log_dir / f"worker-{len(self.processes)}.log").open("wb")
            self.processes.append(
                subprocess.Popen(
                    [script(), "outbox", "work"],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def stop(self) -> list[int]:
        """SIGTERM each, as a supervisor would; their exit codes."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return [process.wait(timeout=60) for process in self.processes]

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.log_dir.glob("worker-*.log")))


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Workers]]:
    made: list[Workers] = []
    yield made
    for group in made:
        group.kill_all()


def _env(database_url: str, smtp: SmtpServer, **values: str) -> dict[str, str]:
    return clean_env(
        HANDOFF_DATABASE_URL=database_url,
        HANDOFF_EMAIL_BACKEND="smtp",
        HANDOFF_SMTP_HOST="127.0.0.1",
        HANDOFF_SMTP_PORT=str(smtp.port),
        HANDOFF_OUTBOX_POLL_SECONDS="0.2",
        HANDOFF_LOG_FORMAT="text",
        **values,
    )


async def _rows(app) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    async with app.state.sessionmaker() as session:
        return list((await session.scalars(select(OutboxMessage))).all())


async def _settled(app, workers: Workers) -> list[OutboxMessage]:  # type: ignore[no-untyped-def]
    """The rows once none is waiting or being sent any more (sent or dead)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        rows = await _rows(app)
        if all(r.status in ("sent", "dead") for r in rows):
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"still unsent after {SETTLE_SECONDS}s: {Counter(r.status for r in await _rows(app))}"
        f"\n{workers.logs()[-4000:]}"
    )


async def test_a_relay_slower_than_the_lease_gets_each_email_once_and_every_row_is_sent(
    client: httpx.AsyncClient,
    app,
    clock: FixedClock,
    cqc_agent: Key,
    database_url: str,
    tmp_path: Path,
    workers: list[Workers],
) -> None:
    """Issue 13's reproduction, scaled down: a relay taking 1 s a message, a 4 s lease, three
    workers. Before the fix the first worker's batch outlived its lease, the idle workers took
    it over and sent it again, and after 8 take-overs every row was `dead` (8 copies each)."""
    clock.set(datetime.now(UTC))
    ids = [
        await request_callback(client, cqc_agent, clock, reference=f"CQC-{n}") for n in range(20)
    ]
    smtp = SmtpServer()
    smtp.handler.delay = 1.0
    smtp.start()
    group = Workers(_env(database_url, smtp, HANDOFF_OUTBOX_LEASE_SECONDS="4"), tmp_path)
    workers.append(group)
    try:
        group.start(3)
        rows = await _settled(app, group)
        assert group.stop() == [0, 0, 0], group.logs()
    finally:
        smtp.stop()

    received = Counter(r.message["Message-ID"] for r in smtp.received)
    assert received == Counter({row.message_id: 1 for row in rows}), "each email once"
    assert {(r.status, r.last_error_code) for r in rows} == {("sent", None)}
    for callback_id in ids:
        response = await client.get(f"/v1/callbacks/{callback_id}", headers=cqc_agent.headers)
        delivery = response.json()["delivery"]
        assert (delivery["status"], delivery["attempts"]) == ("sent", 1)
        assert delivery["sent_at"] is not None


async def test_a_worker_killed_mid_drain_resends_at_most_what_was_in_the_smtp_dialogue(
    client: httpx.AsyncClient,
    app,
    clock: FixedClock,
    cqc_agent: Key,
    database_url: str,
    tmp_path: Path,
    workers: list[Workers],
) -> None:
    """SIGKILL while four connections are busy: every email arrives, and only the ones that were
    in the SMTP dialogue when the worker died (at most one per connection) arrive twice, with
    the same Message-ID. Before the fix every acceptance of the batch so far went again."""
    connections = 4
    clock.set(datetime.now(UTC))
    for n in range(40):
        await request_callback(client, cqc_agent, clock, reference=f"CQC-{n}")
    smtp = SmtpServer()
    smtp.handler.delay = 0.5
    smtp.start()
    env = _env(
        database_url,
        smtp,
        HANDOFF_OUTBOX_LEASE_SECONDS="4",
        HANDOFF_SMTP_CONNECTIONS=str(connections),
    )
    killed, second = Workers(env, tmp_path / "killed"), Workers(env, tmp_path / "second")
    for group in (killed, second):
        group.log_dir.mkdir()
        workers.append(group)
    try:
        killed.start()
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            if len(smtp.received) >= 10:
                break
            await asyncio.sleep(0.02)
        assert len(smtp.received) >= 10, killed.logs()
        killed.processes[0].send_signal(signal.SIGKILL)
        killed.processes[0].wait()
        accepted_before_the_kill = len(smtp.received)

        second.start()
        rows = await _settled(app, second)
        assert second.stop() == [0], second.logs()
    finally:
        smtp.stop()

    received = Counter(r.message["Message-ID"] for r in smtp.received)
    assert set(received) == {row.message_id for row in rows}, "none lost, none unknown"
    duplicates = sum(n - 1 for n in received.values())
    print(
        f"killed after {accepted_before_the_kill} accepted: {duplicates} sent twice "
        f"(at most {connections}), {len(rows)} messages"
    )
    assert duplicates <= connections
    assert {r.status for r in rows} == {"sent"}


@pytest.mark.parametrize(
    ("last_query", "logged"),
    [
        # The recorder's: its acceptances are recorded on a fresh connection.
        ("UPDATE outbox_messages SET status = ''sent''%", "sent messages failed"),
        # The claimer's: that round fails before anything is claimed, and the next one claims.
        ("WITH due AS MATERIALIZED%", "a round failed"),
    ],
    ids=["recorder", "claimer"],
)
async def test_a_held_connection_terminated_mid_drain_loses_no_email(
    last_query: str,
    logged: str,
    client: httpx.AsyncClient,
    app,
    clock: FixedClock,
    cqc_agent: Key,
    database_url: str,
    tmp_path: Path,
    workers: list[Workers],
) -> None:
    """The backend of a connection the worker keeps for a stretch of sending (the one it
    records acceptances on, or the one it claims on) is terminated three times while it
    drains over four connections: each time a fresh connection takes its place, so every
    email is recorded sent and none is sent twice (their claims were renewed meanwhile)."""
    if not PG_URL:
        pytest.skip("needs PostgreSQL: backends to terminate")
    clock.set(datetime.now(UTC))
    for n in range(40):
        await request_callback(client, cqc_agent, clock, reference=f"CQC-{n}")
    smtp = SmtpServer()
    smtp.handler.delay = 0.1
    smtp.start()
    env = _env(database_url, smtp, HANDOFF_SMTP_CONNECTIONS="4")
    group = Workers(env, tmp_path)
    workers.append(group)
    real = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    admin = await asyncpg.connect(real)
    terminated = 0
    try:
        group.start()
        deadline = time.monotonic() + SETTLE_SECONDS
        while terminated < 3 and time.monotonic() < deadline:
            terminated += await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                f" AND query LIKE '{last_query}'"
            )
            await asyncio.sleep(0.3)
        rows = await _settled(app, group)
        assert group.stop() == [0], group.logs()
    finally:
        await admin.close()
        smtp.stop()

    assert terminated >= 3, group.logs()
    assert logged in group.logs()
    received = Counter(r.message["Message-ID"] for r in smtp.received)
    assert received == Counter({row.message_id: 1 for row in rows}), "each email once"
    assert {r.status for r in rows} == {"sent"}
