"""Callers' details are kept only as long as needed: purged a set time after the call back
request is closed, by `handoff purge` and by the outbox worker, leaving the record, its
delivery status and every report figure as they were. An open request keeps them, and one
open too long is listed for team leaders instead."""

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


async def _withdraw(client: httpx.AsyncClient, key: Key, callback_id: uuid.UUID) -> None:
    response = await client.post(f"/v1/callbacks/{callback_id}/withdraw", headers=key.headers)
    assert response.status_code == 200, response.text


async def _audit_rows(app, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    async with app.state.sessionmaker() as session:
        query = select(AuditEvent).where(AuditEvent.action == action)
        return list((await session.scalars(query)).all())


async def test_the_callers_details_go_30_days_after_the_request_is_closed(
    app, client, settings: Settings, clock: FixedClock, cqc_agent: Key
) -> None:
    callback_id = await request_callback(client, cqc_agent, clock)
    clock.advance(60)
    assert await worker(app, settings).drain() == {"sent": 1}
    [eml] = eml_files(settings.email_dir)
    assert CALLER["name"] in eml.read_text()
    before = await _callback(client, cqc_agent, callback_id)
    assert before["caller"]["name"] == CALLER["name"]

    # Sent long ago, but still open: the receiving body needs the details to call back.
    clock.advance(60 * DAY)
    assert await _purge(app, settings, clock) == 0
    await _withdraw(client, cqc_agent, callback_id)
    closed_at = clock.now()
    before = await _callback(client, cqc_agent, callback_id)

    clock.set(closed_at + timedelta(days=30) - timedelta(seconds=1))
    assert await _purge(app, settings, clock) == 0
    assert (await _callback(client, cqc_agent, callback_id))["caller"] is not None

    clock.set(closed_at + timedelta(days=30))
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
    life = ("state", "outcome", "closed_at", "attempts", "version")
    assert {k: after[k] for k in life} == {k: before[k] for k in life}
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


async def test_a_closed_request_whose_email_waits_keeps_them_and_a_dead_one_does_not(
    app, client, settings: Settings, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    refusing = SmtpServer().start()
    refusing.handler.refuse_with = "550 5.1.1 mailbox unavailable"
    try:
        dead_id = await request_callback(client, cqc_agent, clock)
        assert await worker(app, refusing.settings(settings)).drain() == {"dead": 1}
    finally:
        refusing.stop()
    pending_id = await request_callback(client, lgsco_agent, clock)
    await _withdraw(client, cqc_agent, dead_id)
    await _withdraw(client, lgsco_agent, pending_id)
    closed_at = clock.now()

    clock.set(closed_at + timedelta(days=30) - timedelta(seconds=1))
    assert await _purge(app, settings, clock) == 0
    clock.set(closed_at + timedelta(days=30))
    assert await _purge(app, settings, clock) == 1
    dead = await _callback(client, cqc_agent, dead_id)
    assert dead["caller"] is None and dead["delivery"]["status"] == "dead"

    # An email still waiting to go needs the details: they stay, however long it waits.
    clock.advance(365 * DAY)
    assert await _purge(app, settings, clock) == 0
    assert (await _callback(client, lgsco_agent, pending_id))["caller"]["name"] == CALLER["name"]

    # A dead email whose details are gone cannot be queued again.
    get_settings.cache_clear()
    retried = await asyncio.to_thread(
        CliRunner().invoke, cli, ["outbox", "retry", str(dead_id)], env=_env(settings)
    )
    get_settings.cache_clear()
    assert retried.exit_code == 1 and "purged" in retried.output


async def test_a_request_open_too_long_is_listed_for_team_leaders_not_purged(
    app,
    client,
    settings: Settings,
    clock: FixedClock,
    cqc_agent: Key,
    cqc_leader: Key,
    lgsco_agent: Key,
    lgsco_leader: Key,
) -> None:
    stale_id = await request_callback(client, cqc_agent, clock)
    clock.advance(DAY)
    recent_id = await request_callback(client, cqc_agent, clock)
    closed_id = await request_callback(client, cqc_agent, clock)
    await _withdraw(client, cqc_agent, closed_id)
    assert await worker(app, settings).drain() == {"sent": 3}

    def stale_ids(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    incoming = "/v1/callbacks?direction=incoming&stale=true"
    outgoing = "/v1/callbacks?direction=outgoing&stale=true"
    clock.advance(89 * DAY)  # the first request is 90 days old, less a second
    clock.advance(-1)
    assert stale_ids(await client.get(incoming, headers=lgsco_leader.headers)) == []
    clock.advance(2)
    assert stale_ids(await client.get(incoming, headers=lgsco_leader.headers)) == [str(stale_id)]
    assert stale_ids(await client.get(outgoing, headers=cqc_leader.headers)) == [str(stale_id)]
    refused = await client.get(incoming, headers=lgsco_agent.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_role"

    # The purge leaves every open request's details alone, however old.
    clock.advance(400 * DAY)
    assert await _purge(app, settings, clock) == 1  # the withdrawn one only
    for callback_id in (stale_id, recent_id):
        assert (await _callback(client, cqc_agent, callback_id))["caller"] is not None
    both = stale_ids(await client.get(incoming, headers=lgsco_leader.headers))
    assert sorted(both) == sorted([str(stale_id), str(recent_id)])


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
    await _withdraw(client, cqc_agent, callback_id)
    runner = CliRunner()
    # The command runs on the real clock; a retention of 0 days makes the closed request due.
    env = _env(settings, HANDOFF_CALLBACK_RETENTION_DAYS="0")

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
        update={"callback_retention_days": 0, "purge_interval_seconds": 3600}
    )
    the_worker = worker(app, hourly)
    purge = purge_job(the_worker.sessionmaker, hourly)  # what app.wiring hands the worker
    first = await request_callback(client, cqc_agent, clock)
    await the_worker.run_once()
    await _withdraw(client, cqc_agent, first)
    assert await purge.run_if_due(clock.now()) == 1  # the first round purges at once
    assert (await _callback(client, cqc_agent, first))["caller"] is None
    started = clock.now()

    second = await request_callback(client, lgsco_agent, clock)
    await the_worker.run_once()
    await _withdraw(client, lgsco_agent, second)
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
        await _withdraw(client, cqc_agent, await request_callback(client, cqc_agent, clock))
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
    for leader, agent in ((cqc_leader, cqc_agent), (lgsco_leader, lgsco_agent)):
        mine = (await client.get("/v1/callbacks", headers=leader.headers)).json()["items"]
        for item in mine:
            await _withdraw(client, agent, item["id"])
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

    due_at_once = settings.model_copy(update={"callback_retention_days": 0})
    callback_id = await request_callback(client, cqc_agent, clock)
    assert await worker(app, due_at_once).drain() == {"sent": 1}
    await _withdraw(client, cqc_agent, callback_id)
    the_worker = outbox_worker(app.state.sessionmaker, due_at_once, app.state.routes, clock)
    assert [job.name for job in the_worker.jobs] == ["purge", "no_outcome", "report_notices"]
    stop = asyncio.Event()

    async def stop_after_the_round(now: object) -> int:
        stop.set()
        return 0

    the_worker.jobs.append(PeriodicJob("stop", 3600, stop_after_the_round))
    await asyncio.wait_for(the_worker.run(stop), 30)

    assert (await _callback(client, cqc_agent, callback_id))["caller"] is None
    [event] = await _audit_rows(app, "purge")
    assert (event.actor, event.record_id) == ("system", callback_id)
