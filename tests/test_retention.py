"""Callers' details are kept only as long as needed: purged a set time after the call back
email is sent (or became dead), by `handoff purge` and by the outbox worker, leaving the
record, its delivery status and every report figure as they were."""

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.audit.service import CLI, SYSTEM
from app.callbacks.models import CallerDetails
from app.cli import cli
from app.core.clock import FixedClock
from app.core.settings import Settings, get_settings
from app.housekeeping.jobs import purge_job
from app.housekeeping.retention import purge_personal_data
from tests.conftest import Key
from tests.events import Contacts
from tests.helpers import CALLER
from tests.outbox_support import SmtpServer, eml_files, request_callback, worker
from tests.test_report_api import OCT, at, record_october

DAY = 24 * 3600


async def _callback(client: httpx.AsyncClient, key: Key, callback_id: uuid.UUID) -> dict:  # type: ignore[type-arg]
    response = await client.get(f"/v1/callbacks/{callback_id}", headers=key.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _purge(app, settings: Settings, clock: FixedClock) -> int:  # type: ignore[no-untyped-def]
    return await purge_personal_data(
        app.state.sessionmaker, settings, now=clock.now(), actor=SYSTEM
    )


async def _audit_rows(app, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    async with app.state.sessionmaker() as session:
        query = select(AuditEvent).where(AuditEvent.action == action)
        return list((await session.scalars(query)).all())


async def test_the_callers_details_go_30_days_after_the_email_is_sent(
    app, client, settings: Settings, clock: FixedClock, cqc_agent: Key
) -> None:
    callback_id = await request_callback(client, cqc_agent, clock)
    clock.advance(60)
    assert await worker(app, settings).drain() == {"sent": 1}
    sent_at = clock.now()
    [eml] = eml_files(settings.email_dir)
    assert CALLER["name"] in eml.read_text()
    before = await _callback(client, cqc_agent, callback_id)
    assert before["caller"]["name"] == CALLER["name"]

    clock.set(sent_at + timedelta(days=30) - timedelta(seconds=1))
    assert await _purge(app, settings, clock) == 0
    assert (await _callback(client, cqc_agent, callback_id))["caller"] is not None

    clock.set(sent_at + timedelta(days=30))
    assert await _purge(app, settings, clock) == 1

    after = await _callback(client, cqc_agent, callback_id)
    assert after["caller"] is None
    assert after["personal_data_purged_at"] == clock.now().isoformat().replace("+00:00", "Z")
    # The record keeps everything that is not about the caller.
    kept = ("id", "transfer_id", "from_org", "to_org", "reason", "sender_reference", "mailbox")
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept}
    assert after["requested_at"] == before["requested_at"]
    assert after["permission_to_share_at"] == before["permission_to_share_at"]
    assert after["delivery"] == before["delivery"] and after["delivery"]["status"] == "sent"
    # The file backend's copy of the email held the details too.
    assert eml_files(settings.email_dir) == []
    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(CallerDetails)) == 0

    [event] = await _audit_rows(app, "purge")
    assert (event.actor, event.actor_key_id, event.org) == ("system", None, "cqc")
    assert (event.record_type, event.record_id) == ("callback_request", callback_id)
    assert event.at == clock.now()

    # Nothing is due any more: a second purge changes and audits nothing.
    assert await _purge(app, settings, clock) == 0
    assert len(await _audit_rows(app, "purge")) == 1


async def test_a_dead_email_is_purged_after_its_own_period_and_a_pending_one_never(
    app, client, settings: Settings, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    refusing = SmtpServer().start()
    refusing.handler.refuse_with = "550 5.1.1 mailbox unavailable"
    try:
        dead_id = await request_callback(client, cqc_agent, clock)
        assert await worker(app, refusing.settings(settings)).drain() == {"dead": 1}
    finally:
        refusing.stop()
    went_dead = clock.now()
    pending_id = await request_callback(client, lgsco_agent, clock)
    short = settings.model_copy(update={"dead_message_retention_days": 7})

    clock.set(went_dead + timedelta(days=7) - timedelta(seconds=1))
    assert await _purge(app, short, clock) == 0
    clock.set(went_dead + timedelta(days=7))
    assert await _purge(app, short, clock) == 1
    dead = await _callback(client, cqc_agent, dead_id)
    assert dead["caller"] is None and dead["delivery"]["status"] == "dead"

    # An email still waiting to go needs the details: they stay, however long it waits.
    clock.advance(365 * DAY)
    assert await _purge(app, short, clock) == 0
    assert (await _callback(client, lgsco_agent, pending_id))["caller"]["name"] == CALLER["name"]

    # A dead email whose details are gone cannot be queued again.
    get_settings.cache_clear()
    retried = await asyncio.to_thread(
        CliRunner().invoke, cli, ["outbox", "retry", str(dead_id)], env=_env(settings)
    )
    get_settings.cache_clear()
    assert retried.exit_code == 1 and "purged" in retried.output


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    return {
        "HANDOFF_DATABASE_URL": settings.database_url,
        "HANDOFF_EMAIL_DIR": str(settings.email_dir),
        **extra,
    }


@pytest.fixture
def fresh_settings():  # type: ignore[no-untyped-def]
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_handoff_purge_counts_purges_and_exits_0(
    app, client, settings: Settings, clock: FixedClock, cqc_agent: Key, fresh_settings: None
) -> None:
    callback_id = await request_callback(client, cqc_agent, clock)
    assert await worker(app, settings).drain() == {"sent": 1}
    runner = CliRunner()
    # The command runs on the real clock; a retention of 0 days makes the sent email due.
    env = _env(settings, HANDOFF_PERSONAL_DATA_RETENTION_DAYS="0")

    def purge(*args: str):  # type: ignore[no-untyped-def]
        get_settings.cache_clear()
        return runner.invoke(cli, ["purge", *args], env=env)

    # CliRunner runs the command's own event loop: off this test's loop, in a thread.
    dry = await asyncio.to_thread(purge, "--dry-run")
    assert (dry.exit_code, dry.output) == (0, "1 call back request(s) due for purging\n")
    assert (await _callback(client, cqc_agent, callback_id))["caller"] is not None

    done = await asyncio.to_thread(purge)
    assert (done.exit_code, done.output) == (0, "1 call back request(s) purged\n")
    assert (await _callback(client, cqc_agent, callback_id))["caller"] is None
    [event] = await _audit_rows(app, "purge")
    assert (event.actor, event.record_id) == ("cli", callback_id)

    again = await asyncio.to_thread(purge)
    assert (again.exit_code, again.output) == (0, "0 call back request(s) purged\n")


def test_handoff_purge_exits_1_when_the_database_cannot_be_reached(
    tmp_path: Path, fresh_settings: None
) -> None:
    env = {"HANDOFF_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:9/none"}
    result = CliRunner().invoke(cli, ["purge"], env=env)
    assert result.exit_code == 1


async def test_the_worker_purges_once_per_interval_by_its_clock(
    app, client, settings: Settings, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    hourly = settings.model_copy(
        update={"personal_data_retention_days": 0, "purge_interval_seconds": 3600}
    )
    the_worker = worker(app, hourly)
    purge = purge_job(the_worker.sessionmaker, hourly)  # what app.wiring hands the worker
    first = await request_callback(client, cqc_agent, clock)
    await the_worker.run_once()
    assert await purge.run_if_due(clock.now()) == 1  # the first round purges at once
    assert (await _callback(client, cqc_agent, first))["caller"] is None
    started = clock.now()

    second = await request_callback(client, lgsco_agent, clock)
    await the_worker.run_once()
    clock.set(started + timedelta(seconds=3599))
    assert await purge.run_if_due(clock.now()) is None  # not an hour yet: not even a query
    assert (await _callback(client, lgsco_agent, second))["caller"] is not None
    clock.set(started + timedelta(seconds=3600))
    assert await purge.run_if_due(clock.now()) == 1
    assert (await _callback(client, lgsco_agent, second))["caller"] is None


async def test_two_purges_at_once_purge_and_audit_each_request_once(
    app, client, settings: Settings, clock: FixedClock, cqc_agent: Key
) -> None:
    for _ in range(3):
        await request_callback(client, cqc_agent, clock)
    assert await worker(app, settings).drain() == {"sent": 3}
    clock.advance(31 * DAY)

    counts = await asyncio.gather(
        purge_personal_data(app.state.sessionmaker, settings, now=clock.now(), actor=SYSTEM),
        purge_personal_data(app.state.sessionmaker, settings, now=clock.now(), actor=CLI),
    )
    assert sum(counts) == 3
    assert len(await _audit_rows(app, "purge")) == 3


async def test_the_monthly_report_is_identical_before_and_after_a_purge(
    app,
    client,
    settings: Settings,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    await record_october(Contacts(client, clock), cqc_agent, lgsco_agent)
    clock.set(at("2026-11-02T09:00:00"))
    assert await worker(app, settings).drain() == {"sent": 4 + 2}  # 4 call backs, 2 feedback
    clock.set(at("2026-12-05T09:00:00"))
    url = f"/v1/reports/contact-volumes/{OCT}"
    before = {
        leader.org: (await client.get(url, headers=leader.headers)).json()
        for leader in (cqc_leader, lgsco_leader)
    }
    assert before["cqc"]["totals"]["this_month"]["callback_requests"] == 3

    assert await _purge(app, settings, clock) == 4

    listed = (await client.get("/v1/callbacks", headers=cqc_leader.headers)).json()["items"]
    assert listed and all(item["caller"] is None for item in listed)
    for leader in (cqc_leader, lgsco_leader):
        after = await client.get(url, headers=leader.headers)
        assert after.status_code == 200
        assert after.json() == before[leader.org]


async def test_the_worker_the_wiring_builds_purges_between_its_rounds(
    app, client, settings: Settings, clock: FixedClock, cqc_agent: Key
) -> None:
    from app.core.periodic import PeriodicJob
    from app.wiring import outbox_worker

    due_at_once = settings.model_copy(update={"personal_data_retention_days": 0})
    callback_id = await request_callback(client, cqc_agent, clock)
    assert await worker(app, due_at_once).drain() == {"sent": 1}
    the_worker = outbox_worker(app.state.sessionmaker, due_at_once, app.state.routes, clock)
    assert [job.name for job in the_worker.jobs] == ["purge", "no_outcome"]
    stop = asyncio.Event()

    async def stop_after_the_round(now: object) -> int:
        stop.set()
        return 0

    the_worker.jobs.append(PeriodicJob("stop", 3600, stop_after_the_round))
    await asyncio.wait_for(the_worker.run(stop), 30)

    assert (await _callback(client, cqc_agent, callback_id))["caller"] is None
    [event] = await _audit_rows(app, "purge")
    assert (event.actor, event.record_id) == ("system", callback_id)
