"""The monthly contact-volume report through the API: a month of contacts recorded by advisers,
then read by team leaders of both bodies as JSON, CSV and XLSX, and published."""

import csv
import io
from datetime import UTC, datetime
from typing import Generic, TypeVar

import openpyxl
import pytest
from pydantic import Field
from sqlalchemy import select, text

from app.core.clock import FixedClock
from app.core.database import make_sessionmaker
from app.core.months import Month
from app.reports import service
from app.reports.models import ReportPublication
from app.reports.schemas import (
    ANSWER_MEASURES,
    CALLBACK_MEASURES,
    FEEDBACK_MEASURES,
    MEASURES,
    Change,
    FigureSet,
    Measures,
)
from tests.conftest import Key
from tests.events import Contacts
from tests.helpers import assert_problem, statements_sent

OCT = "2026-10"
T = TypeVar("T")


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


@pytest.fixture
def contacts(client, clock: FixedClock) -> Contacts:  # type: ignore[no-untyped-def]
    return Contacts(client, clock)


async def record_october(contacts: Contacts, cqc: Key, lgsco: Key) -> None:
    """September: CQC 2 warm transfers, LGSCO 1 call back. October: more of everything."""
    await contacts.connected(cqc, "lgsco", at("2026-09-03T10:00:00"))
    await contacts.connected(cqc, "lgsco", at("2026-09-30T22:30:00"))  # 23:30 in London
    await contacts.callback(lgsco, "cqc", at("2026-09-15T11:00:00"), "high_call_volume")

    # 30 September 23:30 UTC is 1 October 00:30 in London: October.
    await contacts.connected(cqc, "lgsco", at("2026-09-30T23:30:00"))
    await contacts.connected(cqc, "lgsco", at("2026-10-05T09:00:00"))
    await contacts.connected(cqc, "lgsco", at("2026-10-20T14:00:00"))
    await contacts.callback(cqc, "lgsco", at("2026-10-06T09:30:00"), "wait_threshold_exceeded")
    await contacts.callback(cqc, "lgsco", at("2026-10-07T09:30:00"), "high_call_volume")
    await contacts.signpost(cqc, "lgsco", at("2026-10-08T12:00:00"))
    await contacts.signpost(cqc, "lgsco", at("2026-10-09T12:00:00"))
    await contacts.waiting(cqc, "lgsco", at("2026-10-10T12:00:00"))  # never counted

    await contacts.connected(lgsco, "cqc", at("2026-10-12T10:00:00"))
    await contacts.connected(lgsco, "cqc", at("2026-10-13T10:00:00"))
    await contacts.callback(lgsco, "cqc", at("2026-10-14T10:00:00"), "high_call_volume")
    await contacts.signpost(lgsco, "cqc", at("2026-10-15T10:00:00"))
    # 31 October 23:30 UTC is still 31 October in London (GMT from 25 October).
    await contacts.signpost(lgsco, "cqc", at("2026-10-31T23:30:00"))

    await contacts.feedback(cqc, "lgsco", at("2026-10-16T10:00:00"))
    await contacts.feedback(
        lgsco, "cqc", at("2026-10-17T10:00:00"), reason_for_contact='=HYPERLINK("http://x")'
    )

    # November: not in October's report.
    await contacts.signpost(cqc, "lgsco", at("2026-11-01T00:30:00"))


EXPECTED_CQC_TO_LGSCO = {
    "warm_transfers_connected": 3,
    "warm_transfers_connected_after_threshold": 0,
    "callbacks_wait_threshold_exceeded": 1,
    "callbacks_high_call_volume": 1,
    "callback_requests": 2,
    "transfers_declined": 0,
    "callers_hung_up": 0,
    "transfers_no_outcome_recorded": 0,
    "signposts": 2,
    "total_contacts": 7,
}
EXPECTED_LGSCO_TO_CQC = {
    "warm_transfers_connected": 2,
    "warm_transfers_connected_after_threshold": 0,
    "callbacks_wait_threshold_exceeded": 0,
    "callbacks_high_call_volume": 1,
    "callback_requests": 1,
    "transfers_declined": 0,
    "callers_hung_up": 0,
    "transfers_no_outcome_recorded": 0,
    "signposts": 2,
    "total_contacts": 5,
}


async def test_both_bodies_team_leaders_read_one_report_in_json_csv_and_xlsx(
    client,
    clock: FixedClock,
    contacts: Contacts,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    await record_october(contacts, cqc_agent, lgsco_agent)
    clock.set(at("2026-11-05T09:00:00"))

    response = await client.get(f"/v1/reports/contact-volumes/{OCT}", headers=cqc_leader.headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["month"] == OCT and report["previous_month"] == "2026-09"
    assert report["due_date"] == "2026-11-13"
    assert report["status"] == "due"
    assert report["figures_source"] == "live" and report["publication"] is None
    assert report["period"] == {
        "starts_at": "2026-09-30T23:00:00Z",
        "ends_at": "2026-11-01T00:00:00Z",
        "time_zone": "Europe/London",
    }

    cqc_lgsco, lgsco_cqc = report["directions"]
    assert (cqc_lgsco["from_org"], cqc_lgsco["to_org"], cqc_lgsco["label"]) == (
        "cqc",
        "lgsco",
        "CQC to LGSCO",
    )
    assert cqc_lgsco["this_month"] == EXPECTED_CQC_TO_LGSCO
    assert lgsco_cqc["this_month"] == EXPECTED_LGSCO_TO_CQC
    assert cqc_lgsco["previous_month"]["warm_transfers_connected"] == 2
    assert cqc_lgsco["change"]["warm_transfers_connected"] == {"absolute": 1, "percent": 50.0}
    # No division by zero: nothing the month before gives no percentage.
    assert cqc_lgsco["change"]["signposts"] == {"absolute": 2, "percent": None}
    assert lgsco_cqc["change"]["callback_requests"] == {"absolute": 0, "percent": 0.0}
    assert report["totals"]["this_month"]["total_contacts"] == 12
    assert report["totals"]["previous_month"]["total_contacts"] == 3
    assert report["totals"]["change"]["total_contacts"] == {"absolute": 9, "percent": 300.0}

    feedback = {(g["from_org"], g["about_org"]): g for g in report["feedback"]}
    assert feedback[("cqc", "lgsco")]["count"] == 1
    item = feedback[("cqc", "lgsco")]["items"][0]
    assert item["case_references"] == ["CAS-1/2"]
    assert item["correct_advice"] == "The Ombudsman looks at fees complaints"
    assert item["mailbox"] == "intakemanagers@lgo.org.uk"
    assert "Ada" not in response.text and "7911" not in response.text  # no caller data

    # The other body's team leader sees the same single report.
    other = await client.get(f"/v1/reports/contact-volumes/{OCT}", headers=lgsco_leader.headers)
    assert other.json() == report

    # CSV, by Accept or by ?format=, has the same figures.
    by_accept = await client.get(
        f"/v1/reports/contact-volumes/{OCT}", headers={**cqc_leader.headers, "Accept": "text/csv"}
    )
    by_query = await client.get(
        f"/v1/reports/contact-volumes/{OCT}?format=csv", headers=cqc_leader.headers
    )
    assert by_accept.status_code == 200 and by_accept.text == by_query.text
    assert by_accept.headers["content-type"].startswith("text/csv")
    assert 'filename="contact-volumes-2026-10.csv"' in by_accept.headers["content-disposition"]
    assert figures_from_rows(list(csv.reader(io.StringIO(by_accept.text)))) == figures_of(report)

    xlsx = await client.get(
        f"/v1/reports/contact-volumes/{OCT}?format=xlsx", headers=cqc_leader.headers
    )
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    rows = [[cell.value for cell in row] for row in book["Contact volumes"].iter_rows()]
    assert figures_from_rows(rows) == figures_of(report)
    feedback_rows = list(book["Feedback"].iter_rows(values_only=True))
    assert len(feedback_rows) == 3
    # Text that looks like a formula stays text.
    cell = next(
        c
        for row in book["Feedback"].iter_rows()
        for c in row
        if c.value == '=HYPERLINK("http://x")'
    )
    assert cell.data_type == "s"


def figures_of(report: dict) -> dict[tuple[str, str, str], tuple]:  # type: ignore[type-arg]
    """(from, to, measure) -> (this month, previous month, change, percent) from the JSON."""
    out = {}
    sets = [(d["from_org"], d["to_org"], d) for d in report["directions"]]
    sets.append(("all", "all", report["totals"]))
    for from_org, to_org, figures in sets:
        for measure, _ in MEASURES:
            change = figures["change"][measure]
            out[(from_org, to_org, measure)] = (
                figures["this_month"][measure],
                figures["previous_month"][measure],
                change["absolute"],
                change["percent"],
            )
        for measure, _ in CALLBACK_MEASURES if figures.get("callbacks") else ():
            callbacks = figures["callbacks"]
            out[(from_org, to_org, f"callbacks.{measure}")] = (
                callbacks["this_month"][measure],
                callbacks["previous_month"][measure],
                None,
                None,
            )
        for measure, _ in ANSWER_MEASURES if figures.get("answer") else ():
            answer = figures["answer"]
            out[(from_org, to_org, f"answer.{measure}")] = (
                answer["this_month"][measure],
                answer["previous_month"][measure],
                None,
                None,
            )
        for reason in figures.get("reasons") or ():
            before = reason["previous_month"]
            out[(from_org, to_org, f"reasons.{reason['contact_reason'] or 'none'}")] = (
                reason["this_month"],
                before,
                reason["this_month"] - before,
                round((reason["this_month"] - before) * 100 / before, 1) if before else None,
            )
    for body in report.get("feedback_figures") or []:
        for measure, _ in FEEDBACK_MEASURES:
            out[("all", body["about_org"], f"feedback.{measure}")] = (
                body["this_month"][measure],
                body["previous_month"][measure],
                None,
                None,
            )
    return out


def figures_from_rows(rows: list[list]) -> dict[tuple[str, str, str], tuple]:  # type: ignore[type-arg]
    header, *body = rows
    out = {}
    for row in body:
        values = dict(zip(header, row, strict=True))

        def number(value, kind=int):  # type: ignore[no-untyped-def]
            if isinstance(value, float) or (isinstance(value, str) and "." in value):
                kind = float  # the call backs' hours and shares
            return None if value in ("", None) else kind(value)

        out[(values["from_org"], values["to_org"], values["measure"])] = (
            number(values["this_month"]),
            number(values["previous_month"]),
            number(values["change"]),
            number(values["change_percent"], float),
        )
    return out


async def test_month_boundaries_are_london_calendar_months(
    client, clock: FixedClock, contacts: Contacts, cqc_agent: Key, cqc_leader: Key
) -> None:
    # 23:30 UTC on 31 May is 00:30 on 1 June in British Summer Time.
    await contacts.signpost(cqc_agent, "lgsco", at("2026-05-31T22:59:59"))
    await contacts.signpost(cqc_agent, "lgsco", at("2026-05-31T23:30:00"))
    clock.set(at("2026-07-01T12:00:00"))
    may = (
        await client.get("/v1/reports/contact-volumes/2026-05", headers=cqc_leader.headers)
    ).json()
    june = (
        await client.get("/v1/reports/contact-volumes/2026-06", headers=cqc_leader.headers)
    ).json()
    assert may["directions"][0]["this_month"]["signposts"] == 1
    assert june["directions"][0]["this_month"]["signposts"] == 1
    assert june["directions"][0]["previous_month"]["signposts"] == 1


async def test_status_moves_from_open_to_due_to_overdue_to_awaiting_to_complete_late(
    client, clock: FixedClock, cqc_leader: Key, lgsco_leader: Key
) -> None:
    async def status() -> dict:  # type: ignore[type-arg]
        response = await client.get(
            f"/v1/reports/contact-volumes/{OCT}", headers=cqc_leader.headers
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    clock.set(at("2026-10-31T23:59:00"))  # still October in London
    assert (await status())["status"] == "open"
    refused = await client.post(
        f"/v1/reports/contact-volumes/{OCT}/publish",
        json={"fluctuation_note": "Too early"},
        headers=cqc_leader.headers,
    )
    assert_problem(refused, 409, "month_not_ended")

    clock.set(at("2026-11-13T23:59:00"))  # the due date, in London
    assert (await status())["status"] == "due"
    clock.set(at("2026-11-14T00:00:00"))
    assert (await status())["status"] == "overdue"

    signed = await client.post(
        f"/v1/reports/contact-volumes/{OCT}/sign",
        json={"fluctuation_note": "Fewer calls during the half-term week."},
        headers=lgsco_leader.headers,
    )
    assert signed.status_code == 201, signed.text
    publication = signed.json()["publication"]
    assert publication["version"] == 1
    assert publication["on_time"] is None and publication["complete"] is False
    assert publication["awaiting"] == ["cqc"]
    assert publication["published_by"] == {
        "key_id": str(lgsco_leader.id),
        "org": "lgsco",
        "name": "lgsco intake team leader",
    }
    report = await status()
    assert (report["status"], report["awaiting_bodies"]) == ("awaiting_signature", ["cqc"])
    assert report["published_on_time"] is None

    clock.set(at("2026-11-16T09:00:00"))
    cqc = await client.post(
        f"/v1/reports/contact-volumes/{OCT}/sign",
        json={"fluctuation_note": "Our new web form sent fewer callers to the phone."},
        headers=cqc_leader.headers,
    )
    assert cqc.status_code == 201, cqc.text
    assert cqc.json()["completed"] is True
    assert cqc.json()["publication"]["version"] == 1  # the same version, now complete
    report = await status()
    assert report["status"] == "complete_late"
    assert report["published_on_time"] is False
    assert report["publication"]["completed_at"] == "2026-11-16T09:00:00Z"
    notes = {s["org"]: s["fluctuation_note"] for s in report["publication"]["signatures"]}
    assert notes == {
        "lgsco": "Fewer calls during the half-term week.",
        "cqc": "Our new web form sent fewer callers to the phone.",
    }


async def test_signing_freezes_figures_and_keeps_every_version(
    client,
    clock: FixedClock,
    contacts: Contacts,
    cqc_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    await contacts.connected(cqc_agent, "lgsco", at("2026-10-05T09:00:00"))
    clock.set(at("2026-11-02T10:00:00"))
    first = await client.post(
        f"/v1/reports/contact-volumes/{OCT}/sign",
        json={"fluctuation_note": "First look."},
        headers=cqc_leader.headers,
    )
    assert first.status_code == 201, first.text
    assert first.json()["publication"]["on_time"] is None  # not complete yet
    both = await client.post(
        f"/v1/reports/contact-volumes/{OCT}/sign",
        json={"fluctuation_note": "Nothing to add."},
        headers=lgsco_leader.headers,
    )
    assert both.json()["publication"]["on_time"] is True

    # A signpost recorded late, back-dated into October.
    await contacts.signpost(cqc_agent, "lgsco", at("2026-10-30T10:00:00"))
    clock.set(at("2026-11-03T10:00:00"))
    report = (
        await client.get(f"/v1/reports/contact-volumes/{OCT}", headers=cqc_leader.headers)
    ).json()
    assert report["figures_source"] == "published"
    assert report["directions"][0]["this_month"]["signposts"] == 0  # frozen
    assert report["live_figures_differ"] is True

    second = await client.post(
        f"/v1/reports/contact-volumes/{OCT}/sign",
        json={"fluctuation_note": "With the late signpost."},
        headers=cqc_leader.headers,
    )
    assert second.json()["publication"]["version"] == 2
    report = (
        await client.get(f"/v1/reports/contact-volumes/{OCT}", headers=cqc_leader.headers)
    ).json()
    # The new figures need LGSCO's signature again.
    assert (report["status"], report["awaiting_bodies"]) == ("awaiting_signature", ["lgsco"])
    clock.set(at("2026-11-20T10:00:00"))  # after the due date
    again = await client.post(
        f"/v1/reports/contact-volumes/{OCT}/sign",
        json={"fluctuation_note": "Nothing to add."},
        headers=lgsco_leader.headers,
    )
    assert again.json()["publication"]["version"] == 2 and again.json()["completed"] is True
    assert again.json()["publication"]["on_time"] is False
    report = (
        await client.get(f"/v1/reports/contact-volumes/{OCT}", headers=cqc_leader.headers)
    ).json()
    assert report["status"] == "complete"  # judged by the first complete version
    assert report["publication"]["version"] == 2
    assert report["directions"][0]["this_month"]["signposts"] == 1
    assert report["live_figures_differ"] is False
    assert report["published_on_time"] is True
    assert [v["version"] for v in report["versions"]] == [1, 2]

    v1 = await client.get(
        f"/v1/reports/contact-volumes/{OCT}/versions/1?format=csv", headers=cqc_leader.headers
    )
    assert v1.status_code == 200
    assert 'filename="contact-volumes-2026-10-v1.csv"' in v1.headers["content-disposition"]
    assert "cqc,lgsco,signposts,Signposts,0," in v1.text
    v1_json = (
        await client.get(
            f"/v1/reports/contact-volumes/{OCT}/versions/1", headers=cqc_leader.headers
        )
    ).json()
    assert v1_json["publication"]["fluctuation_note"] == "First look."
    missing = await client.get(
        f"/v1/reports/contact-volumes/{OCT}/versions/3", headers=cqc_leader.headers
    )
    assert_problem(missing, 404, "report_version_not_found")


async def test_only_team_leaders_read_or_sign(
    client, clock: FixedClock, cqc_agent: Key, cqc_leader: Key
) -> None:
    clock.set(at("2026-11-02T10:00:00"))
    url = f"/v1/reports/contact-volumes/{OCT}"
    assert_problem(await client.get(url, headers=cqc_agent.headers), 403, "insufficient_role")
    assert_problem(
        await client.post(
            f"{url}/publish", json={"fluctuation_note": "x"}, headers=cqc_agent.headers
        ),
        403,
        "insufficient_role",
    )
    assert_problem(await client.get(url), 401, "unauthenticated")
    blank = assert_problem(
        await client.post(
            f"{url}/publish", json={"fluctuation_note": " "}, headers=cqc_leader.headers
        ),
        422,
        "blank",
    )
    assert blank["errors"] == [
        {"field": "fluctuation_note", "code": "blank", "message": "must not be blank"}
    ]
    assert_problem(
        await client.post(f"{url}/publish", json={}, headers=cqc_leader.headers),
        422,
        "validation_error",
    )


@pytest.mark.parametrize(
    "month", ["2026-13", "2026-1", "october", "2026-10-01", "0000-01", "9999-12", "\u0662026-10"]
)
async def test_a_month_must_be_written_yyyy_mm(client, cqc_leader: Key, month: str) -> None:
    response = await client.get(f"/v1/reports/contact-volumes/{month}", headers=cqc_leader.headers)
    assert_problem(response, 422, "invalid_month")


async def test_an_unknown_format_is_refused(client, cqc_leader: Key) -> None:
    response = await client.get(
        f"/v1/reports/contact-volumes/{OCT}?format=pdf", headers=cqc_leader.headers
    )
    assert_problem(response, 422, "validation_error")
    # An Accept the report cannot give falls back to JSON.
    response = await client.get(
        f"/v1/reports/contact-volumes/{OCT}", headers={**cqc_leader.headers, "Accept": "text/html"}
    )
    assert response.headers["content-type"] == "application/json"


async def test_counts_are_grouped_in_sql_and_never_touch_caller_details(
    app,
    client,
    clock: FixedClock,
    contacts: Contacts,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
) -> None:
    await record_october(contacts, cqc_agent, lgsco_agent)
    clock.set(at("2026-11-05T09:00:00"))
    with statements_sent(app) as statements:
        response = await client.get(
            f"/v1/reports/contact-volumes/{OCT}", headers=cqc_leader.headers
        )
    assert response.status_code == 200
    assert not any("caller_details" in s for s in statements)
    counting = [s for s in statements if "from transfers" in s or "from signposts" in s]
    # One statement counts both tables, both months, with their contact reasons; one more
    # gives the transfers' times to answer.
    assert len(counting) == 2, counting
    contacts, times = sorted(counting, key=lambda s: "from signposts" not in s)
    assert "group by" in contacts and "union all" in contacts
    assert "outcome_at >=" in contacts and "signposted_at >=" in contacts
    assert "contact_reason" in contacts
    assert "from signposts" not in times and "wait_started_at" in times


async def test_the_counting_statement_can_use_the_time_indexes(app, is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("index plans are checked on PostgreSQL")
    month = Month(2026, 10)
    statement = service.contact_counts_statement(
        [month.previous().utc_range()[0], *month.utc_range()]
    )
    async with app.state.engine.connect() as connection:
        await connection.execute(text("SET enable_seqscan = off"))
        compiled = statement.compile(
            app.state.engine.sync_engine, compile_kwargs={"literal_binds": True}
        )
        plan = "\n".join(row[0] for row in await connection.execute(text(f"EXPLAIN {compiled}")))
    assert "ix_transfers_outcome_at" in plan, plan
    assert "ix_signposts_signposted_at" in plan, plan


async def test_an_old_version_still_loads_after_a_measure_is_added(
    app, client, clock: FixedClock, contacts: Contacts, cqc_agent: Key, cqc_leader: Key, monkeypatch
) -> None:
    """Published with today's measures; then the report gains a measure (added here, in the
    test, the way a later change would add it to Measures); version 1 still reads back, its
    figures as they were frozen and the new measure as nothing counted."""
    await contacts.connected(cqc_agent, "lgsco", at("2026-10-05T09:00:00"))
    clock.set(at("2026-11-02T10:00:00"))
    published = await client.post(
        f"/v1/reports/contact-volumes/{OCT}/publish",
        json={"fluctuation_note": "Before referrals were counted."},
        headers=cqc_leader.headers,
    )
    assert published.status_code == 201, published.text

    class MoreMeasures(Measures[T], Generic[T]):
        referrals: T = Field(title="Referrals")

    class MoreFigureSet(FigureSet):
        this_month: MoreMeasures[int]  # type: ignore[assignment]
        previous_month: MoreMeasures[int]  # type: ignore[assignment]
        change: MoreMeasures[Change]  # type: ignore[assignment]

    class MoreDirectionFigures(MoreFigureSet):
        from_org: str
        to_org: str
        label: str

    monkeypatch.setattr(service, "Figures", MoreMeasures[int])
    monkeypatch.setattr(service, "FigureSet", MoreFigureSet)
    monkeypatch.setattr(service, "DirectionFigures", MoreDirectionFigures)

    async with make_sessionmaker(app.state.engine)() as session:
        stored = (await session.scalars(select(ReportPublication))).one()
    old = service.MonthFigures.thaw(stored.figures)

    cqc_to_lgsco = next(d for d in old.directions if (d.from_org, d.to_org) == ("cqc", "lgsco"))
    assert isinstance(cqc_to_lgsco, MoreDirectionFigures)
    assert cqc_to_lgsco.this_month.warm_transfers_connected == 1  # as frozen
    assert cqc_to_lgsco.this_month.referrals == 0  # not counted then
    assert old.totals.change.referrals == Change(absolute=0, percent=None)
    assert old.totals.this_month.total_contacts == 1
