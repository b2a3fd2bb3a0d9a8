"""Every contact counted in the monthly report (issue 16): a declined transfer, a caller who
hung up, a forgotten transfer, one answered after the wait limit each under its own measure;
the time to answer against a hand computation; contacts by reason (one chosen on the adviser
page); every count of the page linking to a list of exactly that many records; the XLSX's
first sheet as the page reads; older published versions still read."""

import copy
import html
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from python_calamine import CalamineWorkbook
from sqlalchemy import select

from app.core.clock import FixedClock
from app.reports.models import ReportPublication
from app.reports.schemas import ANSWER_MEASURES, MEASURES
from app.transfers.jobs import close_forgotten_transfers
from tests.conftest import Key
from tests.helpers import CALLER, iso
from tests.test_web_advisers import start_to_lgsco
from tests.test_web_reports import csrf, sign_in

OCT, SEP = "2026-10", "2026-09"


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


class Calls:
    """Advisers' calls through the API at chosen moments (the clock is set to each)."""

    def __init__(self, client: httpx.AsyncClient, clock: FixedClock) -> None:
        self.client, self.clock = client, clock

    async def post(self, key: Key, path: str, body: dict[str, Any], status: int = 201) -> Any:
        response = await self.client.post(path, json=body, headers=key.headers)
        assert response.status_code == status, response.text
        return response.json()

    def start(self, key: Key, to_org: str, started: datetime, reason: str | None) -> dict:
        body: dict[str, Any] = {
            "to_org": to_org,
            "sender_reference": f"{key.org.upper()}-7",
            "permission_to_share_at": iso(started),
            "wait_started_at": iso(started),
        }
        if to_org == "cqc":
            body["topic"] = "other"
        if reason:
            body["contact_reason"] = reason
        return body

    async def ended(
        self,
        key: Key,
        to_org: str,
        end: datetime,
        waited: float,
        outcome: dict[str, Any],
        reason: str | None = None,
    ) -> dict:
        """A call recorded in one request once it ended, `waited` seconds after it began."""
        self.clock.set(end)
        body = self.start(key, to_org, end - timedelta(seconds=waited), reason)
        body["outcome"] = outcome
        return await self.post(key, "/v1/transfers", body)  # type: ignore[no-any-return]

    async def connected(self, key: Key, to_org: str, end: datetime, waited: float, **kw: Any):  # type: ignore[no-untyped-def]
        return await self.ended(
            key, to_org, end, waited, {"status": "connected", "connected_at": iso(end)}, **kw
        )

    async def callback(self, key: Key, to_org: str, end: datetime, why: str, **kw: Any):  # type: ignore[no-untyped-def]
        outcome = {"status": "failed", "reason": why, "failed_at": iso(end), "caller": CALLER}
        waited = 90 if why == "wait_threshold_exceeded" else 10
        return await self.ended(key, to_org, end, waited, outcome, **kw)

    async def signpost(self, key: Key, to_org: str, moment: datetime, reason: str | None = None):  # type: ignore[no-untyped-def]
        self.clock.set(moment)
        body = {"to_org": to_org, "signposted_at": iso(moment)}
        if reason:
            body["contact_reason"] = reason
        return await self.post(key, "/v1/signposts", body)


# Seconds each October CQC -> LGSCO warm transfer waited (the threshold is 60: 90 is late).
OCTOBER_WAITS = [30, 10, 90, 45, 20]


async def record_month(
    app: Any, client: httpx.AsyncClient, clock: FixedClock, cqc: Key, lgsco: Key
) -> None:
    """October 2026, and September, through the API; `app` gives the worker's sessions
    and settings (an object with `state.sessionmaker` and `state.settings`)."""
    calls = Calls(client, clock)
    # September: one warm transfer each way.
    await calls.connected(cqc, "lgsco", at("2026-09-10T10:00:00"), 40, reason="delay")
    await calls.connected(lgsco, "cqc", at("2026-09-11T10:00:00"), 12)

    reasons = ["delay", "delay", "safeguarding", None, "fees_and_charges"]
    for day, (waited, reason) in enumerate(zip(OCTOBER_WAITS, reasons, strict=True), start=1):
        await calls.connected(cqc, "lgsco", at(f"2026-10-0{day}T10:00:00"), waited, reason=reason)
    await calls.callback(cqc, "lgsco", at("2026-10-06T10:00:00"), "wait_threshold_exceeded")
    await calls.callback(cqc, "lgsco", at("2026-10-06T11:00:00"), "high_call_volume")
    await calls.ended(cqc, "lgsco", at("2026-10-07T10:00:00"), 5, {"status": "declined"})
    await calls.ended(
        cqc,
        "lgsco",
        at("2026-10-07T11:00:00"),
        50,
        {"status": "caller_hung_up", "hung_up_at": iso(at("2026-10-07T11:00:00"))},
        reason="delay",
    )
    await calls.signpost(cqc, "lgsco", at("2026-10-08T10:00:00"), "delay")
    await calls.signpost(cqc, "lgsco", at("2026-10-08T11:00:00"))
    # LGSCO -> CQC: one answered, one signposted.
    await calls.connected(lgsco, "cqc", at("2026-10-09T10:00:00"), 25, reason="mental_health")
    await calls.signpost(lgsco, "cqc", at("2026-10-09T11:00:00"))

    # A transfer nobody finished: the worker closes it once the clock is past the limit.
    clock.set(at("2026-10-12T09:00:00"))
    await calls.post(cqc, "/v1/transfers", calls.start(cqc, "lgsco", clock.now(), None))
    limit = app.state.settings.no_outcome_after_seconds
    clock.advance(60 + limit + 1)
    assert await close_forgotten_transfers(app.state.sessionmaker, limit, clock.now()) == 1
    # Still waiting at the end of the month: counted nowhere.
    clock.set(at("2026-10-31T10:00:00"))
    await calls.post(cqc, "/v1/transfers", calls.start(cqc, "lgsco", clock.now(), None))
    clock.set(at("2026-11-03T09:00:00"))


async def october(client: httpx.AsyncClient, key: Key) -> dict[str, Any]:
    response = await client.get(f"/v1/reports/contact-volumes/{OCT}", headers=key.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def direction(report: dict[str, Any], from_org: str) -> dict[str, Any]:
    return next(d for d in report["directions"] if d["from_org"] == from_org)


async def test_each_ending_is_counted_under_its_own_measure(
    app, client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:
    await record_month(app, client, clock, cqc_agent, lgsco_agent)
    report = await october(client, cqc_leader)
    cqc = direction(report, "cqc")
    assert cqc["this_month"] == {
        "warm_transfers_connected": 5,
        "warm_transfers_connected_after_threshold": 1,
        "callbacks_wait_threshold_exceeded": 1,
        "callbacks_high_call_volume": 1,
        "callback_requests": 2,
        "transfers_declined": 1,
        "callers_hung_up": 1,
        "transfers_no_outcome_recorded": 1,
        "signposts": 2,
        # 5 + 2 + 1 + 1 + 1 + 2: every ended transfer and every signpost, none left out.
        "total_contacts": 12,
    }
    assert cqc["previous_month"]["total_contacts"] == 1
    assert report["totals"]["this_month"]["total_contacts"] == 12 + 2
    assert report["totals"]["this_month"]["transfers_declined"] == 1


async def test_time_to_answer_matches_a_hand_computation(
    app, client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:
    """Waits 10, 20, 30, 45 and 90 seconds: the median is 30; the 90th percentile sits at
    position 0.9 x (5 - 1) = 3.6 of the sorted waits, 45 + 0.6 x (90 - 45) = 72. Four of the
    seven callers who waited (5 answered, 1 waited into a call back, 1 hung up) were answered
    within the limit: 57.1%. The same on SQLite and on PostgreSQL."""
    await record_month(app, client, clock, cqc_agent, lgsco_agent)
    cqc = direction(await october(client, cqc_leader), "cqc")
    assert cqc["answer"]["this_month"] == {
        "answered": 5,
        "answered_within_threshold": 4,
        "waited": 7,
        "answered_within_threshold_percent": 57.1,
        "answer_seconds_median": 30.0,
        "answer_seconds_p90": 72.0,
    }
    assert cqc["answer"]["previous_month"] == {
        "answered": 1,
        "answered_within_threshold": 1,
        "waited": 1,
        "answered_within_threshold_percent": 100.0,
        "answer_seconds_median": 40.0,
        "answer_seconds_p90": 40.0,
    }
    lgsco = direction(await october(client, cqc_leader), "lgsco")
    assert lgsco["answer"]["this_month"]["answer_seconds_median"] == 25.0


async def test_a_reason_chosen_on_the_adviser_page_is_in_the_breakdown(
    app, client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:
    await record_month(app, client, clock, cqc_agent, lgsco_agent)
    clock.set(at("2026-10-20T10:00:00"))
    await sign_in(client, cqc_agent)
    path = await start_to_lgsco(client, permission_time="09:59", contact_reason="outside_remit")
    clock.advance(15)
    page = await client.get(path)
    answered = await client.post(f"{path}/connected", data={"csrf_token": csrf(page)})
    assert answered.status_code == 303
    clock.set(at("2026-11-03T09:00:00"))
    client.cookies.clear()

    reasons = {
        r["label"]: (r["contact_reason"], r["this_month"], r["previous_month"])
        for r in direction(await october(client, cqc_leader), "cqc")["reasons"]
    }
    assert list(reasons)[0] == "Poor-quality care"  # the route table's order
    assert list(reasons)[-1] == "No reason given"
    assert reasons["Outside LGSCO's remit"] == ("outside_remit", 1, 0)
    # Delay: 2 transfers answered, 1 hung up, 1 signpost; the month before 1.
    assert reasons["Delay"] == ("delay", 4, 1)
    # None given: 1 answered, 2 call backs, 1 declined, 1 forgotten, 1 signpost.
    assert reasons["No reason given"] == (None, 6, 0)
    total = direction(await october(client, cqc_leader), "cqc")["this_month"]["total_contacts"]
    assert sum(count for _, count, _ in reasons.values()) == total

    await sign_in(client, cqc_leader)
    shown = await client.get(f"/reports/{OCT}")
    table = shown.text.split('id="reasons-cqc-lgsco"', 1)[1].split("</table>", 1)[0]
    row = table.split('data-reason="outside_remit"', 1)[1].split("</tr>", 1)[0]
    assert "Outside LGSCO&#39;s remit" in row and ">1<" in row
    chart = shown.text.split('id="reasons-cqc-lgsco-chart-title"', 1)[1].split("</svg>", 1)[0]
    assert "<title>Outside LGSCO&#39;s remit, this month: 1</title>" in chart


# Each measure as the API's lists give its records: (path, filters) whose lengths add up.
T, S = "/v1/transfers", "/v1/signposts"
API_LISTS: dict[str, list[tuple[str, dict[str, str]]]] = {
    "warm_transfers_connected": [(T, {"status": "connected"})],
    "warm_transfers_connected_after_threshold": [(T, {"outcome": "connected_after_threshold"})],
    "callbacks_wait_threshold_exceeded": [(T, {"outcome": "callback_wait_threshold_exceeded"})],
    "callbacks_high_call_volume": [(T, {"outcome": "callback_high_call_volume"})],
    "callback_requests": [(T, {"status": "failed"})],
    "transfers_declined": [(T, {"outcome": "declined"})],
    "callers_hung_up": [(T, {"outcome": "caller_hung_up"})],
    "transfers_no_outcome_recorded": [(T, {"outcome": "no_outcome_recorded"})],
    "signposts": [(S, {})],
    "total_contacts": [(T, {}), (S, {})],
    "answer.answered": [(T, {"status": "connected"})],
    "answer.answered_within_threshold": [(T, {"outcome": "connected_within_threshold"})],
    "answer.waited": [
        (T, {"status": "connected"}),
        (T, {"outcome": "callback_wait_threshold_exceeded"}),
        (T, {"outcome": "caller_hung_up"}),
    ],
}


def figures_of(report_direction: dict[str, Any], part: str) -> dict[str, int]:
    """Every count of a direction in one month (`part`: this_month or previous_month)."""
    counts = {name: report_direction[part][name] for name, _ in MEASURES}
    answer = report_direction["answer"][part]
    for name in ("answered", "answered_within_threshold", "waited"):
        counts[f"answer.{name}"] = answer[name]
    for reason in report_direction["reasons"]:
        counts[f"reasons.{reason['contact_reason'] or 'none'}"] = reason[part]
    return counts


def api_lists(measure: str) -> list[tuple[str, dict[str, str]]]:
    if measure.startswith("reasons."):
        code = measure.split(".", 1)[1]
        reason = {"no_contact_reason": "true"} if code == "none" else {"contact_reason": code}
        return [(T, reason), (S, reason)]
    return API_LISTS[measure]


LINK = re.compile(r'<a href="(/reports/[^"]+/records\?[^"]+)">(\d+)<span class="visually-hidden">')


def page_rows(page: httpx.Response) -> int:
    if 'id="records"' not in page.text:
        return 0
    body = page.text.split('id="records"', 1)[1].split("<tbody>", 1)[1].split("</tbody>")[0]
    return body.count("<tr>")


async def test_every_figure_has_a_list_of_exactly_that_many_records(
    app,
    client,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    await record_month(app, client, clock, cqc_agent, lgsco_agent)
    report = await october(client, cqc_leader)
    leaders = {"cqc": cqc_leader, "lgsco": lgsco_leader}
    for report_direction in report["directions"]:
        leader = leaders[report_direction["from_org"]]
        to_org = report_direction["to_org"]
        for month, part in ((OCT, "this_month"), (SEP, "previous_month")):
            for measure, figure in figures_of(report_direction, part).items():
                listed = 0
                for path, filters in api_lists(measure):
                    query = {**filters, "month": month, "to_org": to_org, "limit": "100"}
                    page = await client.get(path, params=query, headers=leader.headers)
                    assert page.status_code == 200, page.text
                    listed += len(page.json()["items"])
                assert listed == figure, (report_direction["label"], month, measure)

    # The page: each count of the body's own figures links to its list, of that many rows.
    for body, leader in leaders.items():
        client.cookies.clear()
        await sign_in(client, leader)
        shown = await client.get(f"/reports/{OCT}")
        links = [(html.unescape(href), int(n)) for href, n in LINK.findall(shown.text)]
        own = direction(report, body)
        expected = len(figures_of(own, "this_month")) * 2
        assert len(links) == expected, body  # every count of both months, nothing else
        assert all(f"to_org={own['to_org']}" in href for href, _ in links)
        for href, figure in links:
            page = await client.get(href)
            assert page.status_code == 200, href
            assert page_rows(page) == figure, href
            count = re.search(r'id="records-count">(\d+) contact', page.text)
            assert count and int(count.group(1)) == figure, href
            assert "Ada" not in page.text and "07911" not in page.text  # no caller details
            assert "_" not in re.sub(r"<[^>]+>", "", page.text.split("<main", 1)[1]), href


async def test_the_records_page_pages_with_next_links_and_refuses_other_addresses(
    app, client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key, monkeypatch
) -> None:
    from app.web import report_records

    await record_month(app, client, clock, cqc_agent, lgsco_agent)
    monkeypatch.setattr(report_records, "PAGE_SIZE", 5)
    await sign_in(client, cqc_leader)
    seen: list[str] = []
    url: str | None = f"/reports/{OCT}/records?to_org=lgsco&measure=total_contacts"
    while url:
        page = await client.get(url)
        assert page.status_code == 200
        body = page.text.split("<tbody>", 1)[1].split("</tbody>")[0]
        seen += re.findall(r'<th scope="row">([^<]+)</th>', body)
        found = re.search(r'<a href="([^"]+)" id="next-page">Next page</a>', page.text)
        url = html.unescape(found.group(1)) if found else None
    assert len(seen) == 12
    assert (
        "The caller did not want to be transferred"
        in (
            await client.get(f"/reports/{OCT}/records?to_org=lgsco&measure=transfers_declined")
        ).text
    )
    for bad in (
        f"/reports/{OCT}/records?to_org=lgsco&measure=nope",
        f"/reports/{OCT}/records?to_org=cqc&measure=signposts",  # not a direction CQC sends
        "/reports/2026-13/records?to_org=lgsco&measure=signposts",
    ):
        assert (await client.get(bad)).status_code == 404, bad
    # LGSCO's records are not CQC's to list.
    none = await client.get(f"/reports/{OCT}/records?to_org=lgsco&measure=signposts")
    assert page_rows(none) == 2


async def test_the_lists_filter_on_no_contact_reason(
    app, client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:
    await record_month(app, client, clock, cqc_agent, lgsco_agent)
    for path, expected in ((T, 5), (S, 1)):
        listed = await client.get(
            path, params={"no_contact_reason": "true", "month": OCT}, headers=cqc_leader.headers
        )
        assert listed.status_code == 200
        assert [i["contact_reason"] for i in listed.json()["items"]] == [None] * expected
        both = await client.get(
            path,
            params={"no_contact_reason": "true", "contact_reason": "delay"},
            headers=cqc_leader.headers,
        )
        assert both.status_code == 422
        assert both.headers["content-type"].startswith("application/problem+json")
        assert both.json()["code"] == "conflicting_filters"


async def test_csv_and_the_first_sheet_carry_the_new_figures_as_the_page_does(
    app, client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:
    await record_month(app, client, clock, cqc_agent, lgsco_agent)
    csv_text = (
        await client.get(
            f"/v1/reports/contact-volumes/{OCT}?format=csv", headers=cqc_leader.headers
        )
    ).text
    assert "cqc,lgsco,transfers_declined,Transfers the caller declined,1,0,1," in csv_text
    assert "cqc,lgsco,answer.answer_seconds_p90,Seconds to answer: 90th percentile,72.0,40.0" in (
        csv_text
    )
    assert "cqc,lgsco,reasons.delay,Contact reason: Delay,4,1,3,300.0" in csv_text

    xlsx = await client.get(
        f"/v1/reports/contact-volumes/{OCT}?format=xlsx", headers=cqc_leader.headers
    )
    rows = CalamineWorkbook.from_filelike(io.BytesIO(xlsx.content)).get_sheet_by_name("Report")
    cells = rows.to_python()

    def table_after(heading: str, label: str) -> dict[str, list[Any]]:
        start = next(i for i, r in enumerate(cells) if r[0] == heading)
        begin = next(i for i in range(start, len(cells)) if cells[i][0] == label)
        found: dict[str, list[Any]] = {}
        for row in cells[begin + 1 :]:
            if row[0] in ("", None):
                break
            found[row[0]] = row[1:]
        return found

    figures = table_after("Measure", "CQC to LGSCO")
    labels = dict(MEASURES)
    assert figures[labels["transfers_declined"]][:3] == [1, 0, 1]
    assert figures[labels["callers_hung_up"]][:2] == [1, 0]
    assert figures[labels["transfers_no_outcome_recorded"]][:2] == [1, 0]
    assert figures[labels["warm_transfers_connected_after_threshold"]][:2] == [1, 0]
    assert figures[labels["total_contacts"]][:2] == [12, 1]
    answer = table_after("Time to answer", "CQC to LGSCO")
    words = dict(ANSWER_MEASURES)
    assert answer[words["answer_seconds_median"]][:2] == [30.0, 40.0]
    assert answer[words["answered_within_threshold_percent"]][:2] == [pytest.approx(0.571), 1.0]
    reasons = table_after("Contacts by reason", "CQC to LGSCO")
    assert reasons["Delay"][:3] == [4, 1, 3]
    assert reasons["No reason given"][:2] == [6, 0]

    # The page shows the same figures.
    await sign_in(client, cqc_leader)
    page = (await client.get(f"/reports/{OCT}")).text

    def row_of(table: str, measure: str) -> str:
        after = page.split(f'id="{table}"', 1)[1].split(f'data-measure="{measure}"')[1]
        return after.split("</tr>", 1)[0]

    assert "72.0" in row_of("answer-cqc-lgsco", "answer.answer_seconds_p90")
    assert ">Transfers the caller declined</th>" in row_of(
        "figures-cqc-lgsco", "transfers_declined"
    )


async def test_a_version_frozen_before_these_figures_still_reads(
    app, client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:
    await record_month(app, client, clock, cqc_agent, lgsco_agent)
    published = await client.post(
        f"/v1/reports/contact-volumes/{OCT}/publish",
        json={"fluctuation_note": "As it was."},
        headers=cqc_leader.headers,
    )
    assert published.status_code == 201, published.text
    new = {"warm_transfers_connected_after_threshold", "transfers_declined", "callers_hung_up"}
    new.add("transfers_no_outcome_recorded")
    # Make it look like one published before issue 16: no new measure, no answer, no reasons.
    async with app.state.sessionmaker() as session:
        row = await session.scalar(select(ReportPublication))
        assert row is not None
        frozen = copy.deepcopy(row.figures)
        for part in (*frozen["directions"], frozen["totals"]):
            for name in ("answer", "reasons"):
                part.pop(name, None)
            for when in ("this_month", "previous_month", "change"):
                part[when] = {k: v for k, v in part[when].items() if k not in new}
        row.figures = frozen
        await session.commit()

    report = await october(client, cqc_leader)
    cqc = direction(report, "cqc")
    assert report["figures_source"] == "published"
    assert cqc["this_month"]["transfers_declined"] == 0  # not counted then
    assert cqc["this_month"]["total_contacts"] == 12  # as frozen
    assert cqc["answer"] is None and cqc["reasons"] is None
    for fmt in ("csv", "xlsx"):
        got = await client.get(
            f"/v1/reports/contact-volumes/{OCT}?format={fmt}", headers=cqc_leader.headers
        )
        assert got.status_code == 200
    await sign_in(client, cqc_leader)
    page = await client.get(f"/reports/{OCT}")
    assert page.status_code == 200
    assert 'id="answer-not-counted"' in page.text
