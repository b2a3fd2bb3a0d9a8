"""The report both bodies sign (issue 17, ISA Appendix 2 s.6.1): each body's team leader signs
with their body's own reasons for fluctuations; the version is complete when both have signed;
relationship owners read complete versions only."""

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.core.clock import FixedClock
from app.core.months import Month
from app.reports import signing
from app.reports.models import ReportPublication, ReportSignature
from tests.conftest import Key, Keys
from tests.events import Contacts
from tests.helpers import assert_problem

OCT = "2026-10"
URL = f"/v1/reports/contact-volumes/{OCT}"


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


async def _sign(client: httpx.AsyncClient, key: Key, note: str) -> httpx.Response:
    return await client.post(f"{URL}/sign", json={"fluctuation_note": note}, headers=key.headers)


async def _report(client: httpx.AsyncClient, key: Key) -> dict:  # type: ignore[type-arg]
    response = await client.get(URL, headers=key.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


@pytest.fixture
async def owner(key_factory: Keys) -> Key:
    return await key_factory.make("lgsco", "relationship_owner", "lgsco relationship owner")


async def test_signed_by_cqc_awaits_lgsco_then_complete_with_both_notes(
    app, client, clock: FixedClock, cqc_leader: Key, lgsco_leader: Key, owner: Key
) -> None:
    clock.set(at("2026-11-03T10:00:00"))
    cqc = await _sign(client, cqc_leader, "CQC: a quiet month.")
    assert cqc.status_code == 201, cqc.text
    assert cqc.json()["completed"] is False
    report = await _report(client, lgsco_leader)
    assert (report["status"], report["awaiting_bodies"]) == ("awaiting_signature", ["lgsco"])
    assert [s["org"] for s in report["publication"]["signatures"]] == ["cqc"]
    async with app.state.sessionmaker() as session:
        assert await signing.month_is_complete(session, Month.parse(OCT)) is False

    # Until LGSCO signs, the relationship owner has nothing to read.
    assert_problem(await client.get(URL, headers=owner.headers), 404, "report_not_complete")
    assert_problem(
        await client.get(f"{URL}/versions/1", headers=owner.headers), 404, "report_not_complete"
    )
    listed = await client.get("/v1/reports/complete-versions", headers=owner.headers)
    assert listed.status_code == 200 and listed.json()["items"] == []

    clock.set(at("2026-11-04T10:00:00"))
    lgsco = await _sign(client, lgsco_leader, "LGSCO: half-term.")
    assert lgsco.json()["completed"] is True
    report = await _report(client, cqc_leader)
    assert report["status"] == "complete" and report["published_on_time"] is True
    version = report["publication"]
    assert version["complete"] is True and version["awaiting"] == []
    assert {
        s["org"]: (s["fluctuation_note"], s["signed_by"]["name"]) for s in version["signatures"]
    } == {
        "cqc": ("CQC: a quiet month.", "cqc concerns team manager"),
        "lgsco": ("LGSCO: half-term.", "lgsco intake team leader"),
    }
    async with app.state.sessionmaker() as session:
        assert await signing.month_is_complete(session, Month.parse(OCT)) is True
        events = await session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "sign")
        )
    assert events == 2

    read = await client.get(URL, headers=owner.headers)
    assert read.status_code == 200, read.text
    assert read.json()["publication"]["version"] == 1
    assert read.json()["live_figures_differ"] is None  # nothing counted now is shown
    items = (await client.get("/v1/reports/complete-versions", headers=owner.headers)).json()
    assert [(i["month"], i["version"], i["on_time"]) for i in items["items"]] == [(OCT, 1, True)]


async def test_a_changed_note_makes_a_new_version_the_other_body_signs_again(
    client, clock: FixedClock, cqc_leader: Key, lgsco_leader: Key, owner: Key
) -> None:
    clock.set(at("2026-11-03T10:00:00"))
    await _sign(client, cqc_leader, "First words.")
    await _sign(client, lgsco_leader, "Agreed.")
    again = await _sign(client, cqc_leader, "First words.")
    assert_problem(again, 409, "already_signed")

    changed = await _sign(client, cqc_leader, "Better words.")
    assert changed.json()["publication"]["version"] == 2
    assert changed.json()["publication"]["awaiting"] == ["lgsco"]
    report = await _report(client, cqc_leader)
    assert report["status"] == "awaiting_signature"
    # The relationship owner still reads the complete version 1, never version 2.
    read = (await client.get(URL, headers=owner.headers)).json()
    assert read["publication"]["version"] == 1
    assert [v["version"] for v in read["versions"]] == [1]
    assert_problem(
        await client.get(f"{URL}/versions/2", headers=owner.headers), 404, "report_not_complete"
    )
    await _sign(client, lgsco_leader, "Agreed.")
    read = (await client.get(URL, headers=owner.headers)).json()
    assert read["publication"]["version"] == 2
    notes = {s["org"]: s["fluctuation_note"] for s in read["publication"]["signatures"]}
    assert notes == {"cqc": "Better words.", "lgsco": "Agreed."}


async def test_changed_figures_make_a_new_version(
    client, clock: FixedClock, cqc_agent: Key, cqc_leader: Key, lgsco_leader: Key
) -> None:
    contacts = Contacts(client, clock)
    clock.set(at("2026-11-03T10:00:00"))
    await _sign(client, cqc_leader, "Quiet.")
    await contacts.signpost(cqc_agent, "lgsco", at("2026-10-30T10:00:00"))  # recorded late
    clock.set(at("2026-11-04T10:00:00"))
    lgsco = await _sign(client, lgsco_leader, "Quiet.")
    # LGSCO signed other figures than CQC did: a new version, CQC's signature needed again.
    assert lgsco.json()["publication"]["version"] == 2
    assert lgsco.json()["publication"]["awaiting"] == ["cqc"]
    assert lgsco.json()["completed"] is False


async def test_a_month_cannot_be_signed_before_it_ends(
    client, clock: FixedClock, cqc_leader: Key
) -> None:
    clock.set(at("2026-10-31T23:59:00"))
    assert_problem(await _sign(client, cqc_leader, "Too early."), 409, "month_not_ended")


async def test_two_team_leaders_signing_at_once_make_one_complete_version(
    app, client, clock: FixedClock, cqc_leader: Key, lgsco_leader: Key, is_postgres: bool
) -> None:
    """Real concurrent requests: the month's lock (PostgreSQL) or the single writer
    (SQLite) lets one decide at a time, so neither makes its own version 1 and neither
    signature is lost."""
    if not is_postgres:
        pytest.skip("concurrent signing is checked on PostgreSQL")
    clock.set(at("2026-11-03T10:00:00"))
    for round_ in range(3):
        month = f"2026-{10 - round_:02d}"
        responses = await asyncio.gather(
            client.post(
                f"/v1/reports/contact-volumes/{month}/sign",
                json={"fluctuation_note": "CQC."},
                headers=cqc_leader.headers,
            ),
            client.post(
                f"/v1/reports/contact-volumes/{month}/sign",
                json={"fluctuation_note": "LGSCO."},
                headers=lgsco_leader.headers,
            ),
        )
        assert [r.status_code for r in responses] == [201, 201], [r.text for r in responses]
        assert sorted(r.json()["completed"] for r in responses) == [False, True]
        async with app.state.sessionmaker() as session:
            versions = (
                await session.scalars(
                    select(ReportPublication).where(ReportPublication.month == month)
                )
            ).all()
            assert len(versions) == 1
            assert versions[0].completed_at is not None
            signed = await session.scalar(
                select(func.count())
                .select_from(ReportSignature)
                .where(ReportSignature.publication_id == versions[0].id)
            )
        assert signed == 2


async def test_relationship_owners_read_reports_and_nothing_else(
    client, clock: FixedClock, cqc_agent: Key, owner: Key
) -> None:
    clock.set(at("2026-11-03T10:00:00"))
    for method, url, body in [
        ("GET", "/v1/routes", None),
        ("GET", "/v1/transfers", None),
        ("GET", "/v1/callbacks", None),
        ("GET", "/v1/feedback", None),
        ("GET", "/v1/signposts", None),
        ("GET", "/v1/keys", None),
        ("GET", "/v1/audit", None),
        ("POST", f"{URL}/sign", {"fluctuation_note": "x"}),
        ("POST", "/v1/transfers", {"to_org": "lgsco"}),
        ("POST", "/v1/keys", {"role": "agent", "name": "x"}),
    ]:
        response = await client.request(method, url, json=body, headers=owner.headers)
        assert_problem(response, 403, "insufficient_role")


async def test_relationship_owner_keys_are_made_by_an_admin(client, key_factory: Keys) -> None:
    admin = await key_factory.make("cqc", "admin")
    made = await client.post(
        "/v1/keys",
        json={"role": "relationship_owner", "name": "CQC relationship owner"},
        headers=admin.headers,
    )
    assert made.status_code == 201, made.text
    assert made.json()["role"] == "relationship_owner"
    headers = {"Authorization": f"Bearer {made.json()['secret']}"}
    listed = await client.get("/v1/reports/complete-versions", headers=headers)
    assert listed.status_code == 200
