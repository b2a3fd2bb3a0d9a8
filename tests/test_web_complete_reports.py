"""The relationship owners' pages (issue 17, ISA Appendix 2 s.6.1): a relationship owner signs
in and lands on "Complete reports", the versions both bodies have signed, newest first; a
version's page shows its frozen figures, both bodies' reasons and signatures and its feedback
section, read-only, and nothing counted now, no records, no downloads, no sign form. A version
that is not complete is the 404 page. Team leaders may open the pages too; advisers may not."""

import re
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.conftest import Key
from tests.events import Contacts
from tests.helpers import CALLER
from tests.test_web_advisers import nav
from tests.test_web_messages import ALL_CODES, QUOTED_ID, SNAKE, visible_text
from tests.test_web_reports import sign_in

OCT = "2026-10"
AUG = "2026-08"
ANSWER = {"remedial_action": "Went over the fees route with the team.", "training_issue": True}
NOTES = {
    "cqc": "CQC: fewer calls after half-term.",
    "lgsco": "LGSCO: the new fees guidance brought more transfers.",
}


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


async def _sign(client: httpx.AsyncClient, key: Key, month: str, note: str) -> dict[str, Any]:
    response = await client.post(
        f"/v1/reports/contact-volumes/{month}/sign",
        json={"fluctuation_note": note},
        headers=key.headers,
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def record_and_sign(
    client: httpx.AsyncClient,
    clock: Any,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    """August 2026 complete late (due Monday 14 September, signed on the 25th); October 2026
    complete on time in version 1, again in version 2 (CQC changed its reasons), and a
    version 3 that only CQC has signed."""
    contacts = Contacts(client, clock)
    await contacts.signpost(cqc_agent, "lgsco", at("2026-08-12T10:00:00"))
    clock.set(at("2026-09-25T10:00:00"))
    await _sign(client, cqc_leader, AUG, "CQC: August was quiet.")
    await _sign(client, lgsco_leader, AUG, "LGSCO: the summer holidays.")

    await contacts.connected(cqc_agent, "lgsco", at("2026-10-05T09:00:00"))
    await contacts.connected(cqc_agent, "lgsco", at("2026-10-06T09:00:00"))
    await contacts.connected(lgsco_agent, "cqc", at("2026-10-06T11:00:00"))
    await contacts.callback(
        cqc_agent, "lgsco", at("2026-10-07T09:30:00"), "wait_threshold_exceeded"
    )
    await contacts.signpost(lgsco_agent, "cqc", at("2026-10-09T12:00:00"))
    feedback = await contacts.feedback(cqc_agent, "lgsco", at("2026-10-21T14:00:00"))
    clock.set(at("2026-10-22T10:00:00"))
    answered = await client.post(
        f"/v1/feedback/{feedback['id']}/response", json=ANSWER, headers=lgsco_leader.headers
    )
    assert answered.status_code == 200, answered.text

    clock.set(at("2026-11-03T10:00:00"))
    await _sign(client, cqc_leader, OCT, "CQC: a quiet month.")
    clock.set(at("2026-11-04T10:00:00"))
    assert (await _sign(client, lgsco_leader, OCT, NOTES["lgsco"]))["completed"] is True
    clock.set(at("2026-11-05T10:00:00"))
    await _sign(client, cqc_leader, OCT, NOTES["cqc"])
    clock.set(at("2026-11-06T10:00:00"))
    second = await _sign(client, lgsco_leader, OCT, NOTES["lgsco"])
    assert (second["publication"]["version"], second["completed"]) == (2, True)
    clock.set(at("2026-11-09T10:00:00"))
    third = await _sign(client, cqc_leader, OCT, "CQC: words not yet agreed.")
    assert third["publication"]["awaiting"] == ["lgsco"]
    clock.set(at("2026-11-10T10:00:00"))


def rows(page: httpx.Response) -> list[tuple[str, str]]:
    return re.findall(r'<tr data-month="([0-9-]+)" data-version="(\d+)">', page.text)


def assert_plain_words(page: httpx.Response) -> None:
    """No code, snake_case word or quoted internal id among the words a person reads."""
    assert page.headers["content-type"].startswith("text/html"), page.text
    text = visible_text(page.text)
    assert not SNAKE.search(text), (page.url, SNAKE.findall(text))
    assert not QUOTED_ID.search(text), (page.url, QUOTED_ID.findall(text))
    for code in ALL_CODES:
        if "_" in code:
            assert code not in text, (page.url, code)


async def _owner(key_factory: Any) -> Key:
    return await key_factory.make("cqc", "relationship_owner", "CQC relationship owner")


async def test_a_relationship_owner_lands_on_the_complete_reports_newest_first(
    client, clock, key_factory, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader
) -> None:
    await record_and_sign(client, clock, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader)
    owner = await _owner(key_factory)

    signed_in = await sign_in(client, owner)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/complete-reports"
    assert (await client.get("/")).headers["location"] == "/complete-reports"

    page = await client.get("/complete-reports")
    assert page.status_code == 200
    assert nav(page) == ["Complete reports"]
    assert 'aria-current="page">Complete reports' in page.text
    assert "(CQC, relationship owner)" in page.text
    # Version 3 of October is not complete: not listed.
    assert rows(page) == [(OCT, "2"), (OCT, "1"), (AUG, "1")]
    text = " ".join(visible_text(page.text).split())
    assert "3 complete versions, newest first" in text
    assert "October 2026 , version 2 2 6 November 2026 at 10:00 On time" in text
    assert "1 Replaced by version 2 4 November 2026 at 10:00 On time" in text
    assert (
        "August 2026 , version 1 1 25 September 2026 at 11:00 Late "
        "Due Monday 14 September 2026" in text
    )
    assert f'href="/complete-reports/{OCT}/versions/1"' in page.text
    assert_plain_words(page)

    # A month's address is its newest complete version.
    latest = await client.get(f"/complete-reports/{OCT}")
    assert latest.status_code == 303
    assert latest.headers["location"] == f"/complete-reports/{OCT}/versions/2"


async def test_a_complete_version_is_read_only_with_both_notes_and_the_feedback(
    client, clock, key_factory, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader
) -> None:
    await record_and_sign(client, clock, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader)
    owner = await _owner(key_factory)
    api = await client.get(f"/v1/reports/contact-volumes/{OCT}/versions/2", headers=owner.headers)
    assert api.status_code == 200, api.text
    report = api.json()

    await sign_in(client, owner)
    page = await client.get(f"/complete-reports/{OCT}/versions/2")
    assert page.status_code == 200
    assert 'aria-current="page">Complete reports' in page.text
    text = " ".join(visible_text(page.text).split())
    assert "October 2026" in text and "Version 2" in text
    assert "Complete Became complete on 6 November 2026 at 10:00, on time" in text
    # The figures the version froze, as the API gives them.
    for direction in report["directions"]:
        table_id = f"figures-{direction['from_org']}-{direction['to_org']}"
        table = re.search(rf'<table[^>]*id="{table_id}">(.*?)</table>', page.text, re.S)
        assert table, table_id
        for measure in ("warm_transfers_connected", "callback_requests", "total_contacts"):
            cells = re.search(
                rf'<tr data-measure="{measure}"[^>]*>.*?<td class="numeric">(\d+)</td>',
                table.group(1),
                re.S,
            )
            assert cells and int(cells.group(1)) == direction["this_month"][measure], measure
    assert 'id="callbacks-cqc-lgsco"' in page.text  # the call back figures
    assert 'id="answer-cqc-lgsco"' in page.text  # time to answer
    assert 'id="feedback-figures-lgsco"' in page.text  # the feedback figures
    # Both bodies' reasons and signatures.
    for org, note in NOTES.items():
        assert note in text, org
    assert "Signed by cqc concerns team manager on 5 November 2026 at 10:00" in text
    assert "Signed by lgsco intake team leader on 6 November 2026 at 10:00" in text
    # The feedback section, with the answer.
    assert "From CQC about LGSCO (1)" in text and "Refresh the team on the fees route" in text
    assert ANSWER["remedial_action"] in text and "Answered" in text
    assert f'href="/complete-reports/{OCT}/versions/1"' in page.text  # the other version

    # Read-only, and nothing counted now or behind a figure.
    assert "<form" not in page.text.replace('<form method="post" action="/sign-out">', "")
    assert "/records" not in page.text and 'href="/reports' not in page.text
    assert "download" not in page.text.lower() and ".csv" not in page.text
    assert "The last 12 months" not in page.text and 'id="chart-heading"' not in page.text
    assert "Sign the report" not in page.text and "Version 3" not in page.text
    assert 'id="stale-callbacks"' not in page.text
    for detail in CALLER.values():
        assert detail not in page.text
    assert_plain_words(page)

    replaced = await client.get(f"/complete-reports/{OCT}/versions/1")
    assert replaced.status_code == 200
    assert "Version 2 replaced this version" in replaced.text
    assert "CQC: a quiet month." in replaced.text
    august = await client.get(f"/complete-reports/{AUG}/versions/1")
    assert "Complete (late)" in august.text and "after the due date" in august.text
    assert_plain_words(august)


async def test_a_version_that_is_not_complete_is_a_page_not_found_in_plain_words(
    client, clock, key_factory, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader
) -> None:
    await record_and_sign(client, clock, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader)
    await sign_in(client, await _owner(key_factory))
    awaiting = await client.get(f"/complete-reports/{OCT}/versions/3")
    missing = await client.get(f"/complete-reports/{OCT}/versions/9")
    for page, version in ((awaiting, 3), (missing, 9)):
        assert page.status_code == 404
        text = " ".join(visible_text(page.text).split())
        assert "This report is not complete" in text
        # Signed by one body or never made: the page does not tell them apart.
        assert (
            f"There is no complete version {version} of the October 2026 report. A report can "
            "be read here once the team leaders of both CQC and LGSCO have signed it." in text
        )
        assert 'data-code="report_not_complete"' not in page.text
        assert '<a href="/complete-reports">See the complete reports</a>' in page.text
        assert_plain_words(page)
    september = await client.get("/complete-reports/2026-09")
    assert september.status_code == 404
    assert "The September 2026 report is not complete yet." in visible_text(september.text)
    assert_plain_words(september)
    for path in (
        "/complete-reports/2026-13",
        "/complete-reports/not-a-month/versions/1",
        f"/complete-reports/{OCT}/versions/0",
        f"/complete-reports/{OCT}/versions/x",
    ):
        page = await client.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert_plain_words(page)


async def test_team_leaders_may_open_the_complete_reports_and_advisers_may_not(
    client, clock, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader
) -> None:
    await record_and_sign(client, clock, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader)
    await sign_in(client, lgsco_leader)
    reports = await client.get("/reports")
    assert 'href="/complete-reports"' in reports.text
    assert "Complete reports" not in nav(reports)  # their own section is the monthly reports
    listed = await client.get("/complete-reports")
    assert listed.status_code == 200 and rows(listed)[0] == (OCT, "2")
    version = await client.get(f"/complete-reports/{OCT}/versions/2")
    assert version.status_code == 200 and NOTES["cqc"] in version.text
    assert "/records" not in version.text  # not on this page, even for a team leader
    assert_plain_words(listed)

    client.cookies.clear()
    await sign_in(client, cqc_agent)
    for path in ("/complete-reports", f"/complete-reports/{OCT}/versions/2"):
        refused = await client.get(path)
        assert refused.status_code == 403, path
        assert "This page is for team leaders and relationship owners." in refused.text
        assert_plain_words(refused)


async def test_with_nothing_complete_the_list_says_so(client, key_factory) -> None:
    await sign_in(client, await _owner(key_factory))
    page = await client.get("/complete-reports")
    assert page.status_code == 200
    assert "No report is complete yet." in page.text and "<table" not in page.text
    assert_plain_words(page)
