"""The one-request failure on PostgreSQL, whose one statement is its own transaction, run
straight on the driver (core.database.execute_alone): real faults under it, and what the
client sees of them. A client never gets a 500, and nothing is saved twice: a connection
found dead is passed over, a statement cut off before it committed runs again, one whose
answer was lost after it committed is found saved and not run again, and when the database
stays away the answer is 503 with Retry-After.

The statements here are run alone because nothing listens to the engine's statements (the
in-process faults of tests/db_faults.py do, and so send them through SQLAlchemy instead)."""

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core.clock import FixedClock
from app.core.settings import Settings
from app.main import create_app
from app.transfers import new_records
from tests.conftest import PG_URL, Key
from tests.db_faults import TcpProxy, proxy_to
from tests.helpers import (
    CALLER,
    assert_one_failed_transfer,
    assert_problem,
    failure,
    to_lgsco,
)

pytestmark = pytest.mark.skipif(not PG_URL, reason="the statement runs alone on PostgreSQL only")

# The one statement's answer (its CommandComplete tag); nothing else the app sends ends so.
THE_STATEMENTS_ANSWER = b"INSERT 0 1\x00"
RUNS_AGAIN = "the statement runs again on a fresh one"


def real_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(False)


def one_request_failure(clock: FixedClock) -> dict[str, Any]:
    outcome = {"status": "failed", **failure("high_call_volume", caller=dict(CALLER))}
    return to_lgsco(clock.now(), outcome=outcome)


async def post_failure(client: httpx.AsyncClient, clock: FixedClock, key: Key) -> httpx.Response:
    """A one-request failure, sent without an Idempotency-Key (so its statement runs alone)."""
    return await client.post("/v1/transfers", json=one_request_failure(clock), headers=key.headers)


@pytest.fixture
def alone(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each statement run alone, as it is run: a test that meant to run one and sent its
    records another way fails here, not by passing for the wrong reason."""
    runs: list[str] = []
    real = new_records.execute_alone

    async def counted(*args: Any, **kwargs: Any) -> None:
        runs.append(args[1][:20])
        await real(*args, **kwargs)

    monkeypatch.setattr(new_records, "execute_alone", counted)
    return runs


async def known(client: httpx.AsyncClient, key: Key) -> None:
    """The key looked up once, so that the next write's transaction holds nothing else."""
    answer = await client.get("/v1/routes", headers=key.headers)
    assert answer.status_code == 200, answer.text


async def terminate_backends(url: str, where: str = "true") -> int:
    admin = await asyncpg.connect(real_url(url))
    try:
        return int(
            await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                f" AND backend_type = 'client backend' AND {where}"
            )
        )
    finally:
        await admin.close()


async def test_a_connection_the_pool_holds_dead_is_passed_over_and_the_failure_saved_once(
    client: httpx.AsyncClient,
    app: Any,
    clock: FixedClock,
    cqc_agent: Key,
    alone: list[str],
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await known(client, cqc_agent)
    assert await terminate_backends(database_url) >= 1
    await asyncio.sleep(0.5)  # the driver reads the server's goodbye
    with caplog.at_level(logging.WARNING):
        created = await post_failure(client, clock, cqc_agent)
    assert created.status_code == 201, created.text
    assert len(alone) == 1
    await assert_one_failed_transfer(app)
    assert any("on a fresh one" in r.getMessage() for r in caplog.records)


async def test_a_statement_whose_connection_dies_before_it_commits_runs_again_once(
    client: httpx.AsyncClient,
    app: Any,
    clock: FixedClock,
    cqc_agent: Key,
    alone: list[str],
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The statement waits for a lock another transaction holds, and its backend is
    terminated there: it had saved nothing, so it runs again on a fresh connection."""
    await known(client, cqc_agent)
    holder = await asyncpg.connect(real_url(database_url))
    try:
        lock = holder.transaction()
        await lock.start()
        await holder.execute("LOCK TABLE transfers IN SHARE ROW EXCLUSIVE MODE")
        with caplog.at_level(logging.WARNING):
            post = asyncio.create_task(post_failure(client, clock, cqc_agent))
            waiting = "wait_event_type = 'Lock' AND query LIKE 'WITH r0 AS (INSERT INTO transfers%'"
            for _ in range(200):
                if await terminate_backends(database_url, waiting):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the statement never waited for the lock")
            await lock.commit()
            created = await post
    finally:
        await holder.close()
    assert created.status_code == 201, created.text
    assert len(alone) == 1
    await assert_one_failed_transfer(app)
    assert [r for r in caplog.records if RUNS_AGAIN in r.getMessage()]


@pytest.fixture
async def through_proxy(
    database_url: str, tmp_path: Path, clock: FixedClock
) -> AsyncIterator[tuple[Any, httpx.AsyncClient, TcpProxy]]:
    """The app with its database behind a TCP proxy (tests/db_faults.py)."""
    real = make_url(database_url)
    with proxy_to(real.host or "127.0.0.1", real.port or 5432) as proxy:
        proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        settings = Settings(
            database_url=proxied,
            email_dir=tmp_path / "outbox",
            outbox_worker_enabled=False,
            _env_file=None,  # type: ignore[call-arg]
        )
        application = create_app(settings, clock=clock)
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://handoff.test") as c:
                yield application, c, proxy
        finally:
            await application.state.engine.dispose()


async def test_a_statement_whose_answer_is_lost_after_it_committed_is_not_saved_twice(
    through_proxy: tuple[Any, httpx.AsyncClient, TcpProxy],
    clock: FixedClock,
    cqc_agent: Key,
    alone: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The server commits the statement and its answer never comes back: run again, it
    would save the call back twice. It is found saved instead, and answered 201."""
    app, client, proxy = through_proxy
    await known(client, cqc_agent)
    proxy.lose_answer_with(THE_STATEMENTS_ANSWER)
    with caplog.at_level(logging.WARNING):
        created = await post_failure(client, clock, cqc_agent)
    assert proxy.answers_lost == 1, "the fault never fired"
    assert created.status_code == 201, created.text
    assert len(alone) == 1
    await assert_one_failed_transfer(app)
    read = await client.get(f"/v1/transfers/{created.json()['id']}", headers=cqc_agent.headers)
    assert read.status_code == 200 and read.json()["status"] == "failed"


async def test_a_statement_cut_off_while_the_database_stays_away_answers_503_and_is_saved_once(
    through_proxy: tuple[Any, httpx.AsyncClient, TcpProxy],
    clock: FixedClock,
    cqc_agent: Key,
    alone: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Saved, its answer lost, and no new connection to be had: whether it was saved cannot
    be known, so the client is told to come back (and that an Idempotency-Key makes that
    safe). Never a 500, never a stack in the log."""
    app, client, proxy = through_proxy
    await known(client, cqc_agent)
    proxy.lose_answer_with(THE_STATEMENTS_ANSWER, then_refuse=True)
    with caplog.at_level(logging.WARNING):
        answer = await post_failure(client, clock, cqc_agent)
    assert proxy.answers_lost == 1, "the fault never fired"
    assert_problem(answer, 503, "database_unavailable")
    assert answer.headers["Retry-After"] == "1"
    assert "Idempotency-Key" in answer.json()["detail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert len(alone) == 1
    proxy.restore()
    await assert_one_failed_transfer(app)
