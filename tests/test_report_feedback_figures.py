"""The monthly report's feedback figures (issue 17): per body, the feedback about it received,
answered, not answered at the month's end, and the median working days it took to answer,
counted in SQL on SQLite and PostgreSQL, in the JSON, the CSV, the XLSX and published versions."""

import csv
import io
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, update

from app.core.clock import FixedClock
from app.core.migrate import upgrade
from app.reports.exports import FEEDBACK_HEADINGS
from app.reports.models import ReportPublication
from tests.conftest import Key, sqlite_url
from tests.events import Contacts
from tests.test_report_exports import calamine_sheets

MAY = "2026-05"
ANSWER = {"remedial_action": "Went over the fees route with the team.", "training_issue": True}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def _answer(
    client: httpx.AsyncClient, clock: FixedClock, key: Key, feedback: dict[str, Any], when: str
) -> None:
    clock.set(at(when))
    response = await client.post(
        f"/v1/feedback/{feedback['id']}/response", json=ANSWER, headers=key.headers
    )
    assert response.status_code == 200, response.text


async def record_may(
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    """Feedback about LGSCO (from CQC) and about CQC (from LGSCO) around May 2026, whose bank
    holidays are Monday 4 May and Monday 25 May (times UTC; London is an hour ahead).

    About LGSCO:
    - L1: received Thursday 30 April, answered Tuesday 5 May: Fri 1, (Mon 4 a bank holiday),
      Tue 5: 2 working days;
    - L2: received Friday 22 May, answered Thursday 28 May: (Mon 25 a bank holiday), Tue 26,
      Wed 27, Thu 28: 3;
    - L3: received Monday 11 May, acknowledged, never answered;
    - L4: received Friday 29 May, answered Monday 1 June: open at May's end;
    - L5: received Wednesday 13 May at 10:00, answered at 14:00 the same day: 0.
    About CQC:
    - C1: received Tuesday 5 May, never acknowledged;
    - C2: received Friday 1 May, answered Friday 8 May: (Mon 4 a bank holiday), Tue 5 to
      Fri 8: 4;
    - C3: received Tuesday 19 May, answered Friday 29 May: 20, 21, 22, (25), 26, 27, 28, 29: 7.
    """
    contacts = Contacts(client, clock)
    l1 = await contacts.feedback(cqc_agent, "lgsco", at("2026-04-30T11:00:00"))
    c2 = await contacts.feedback(lgsco_agent, "cqc", at("2026-05-01T10:00:00"))
    await _answer(client, clock, lgsco_leader, l1, "2026-05-05T11:00:00")
    await contacts.feedback(lgsco_agent, "cqc", at("2026-05-05T12:00:00"))
    await _answer(client, clock, cqc_leader, c2, "2026-05-08T10:00:00")
    l3 = await contacts.feedback(cqc_agent, "lgsco", at("2026-05-11T10:00:00"))
    clock.set(at("2026-05-12T10:00:00"))
    acknowledged = await client.post(
        f"/v1/feedback/{l3['id']}/acknowledge", headers=lgsco_agent.headers
    )
    assert acknowledged.status_code == 200, acknowledged.text
    l5 = await contacts.feedback(cqc_agent, "lgsco", at("2026-05-13T09:00:00"))
    await _answer(client, clock, lgsco_agent, l5, "2026-05-13T13:00:00")
    c3 = await contacts.feedback(lgsco_agent, "cqc", at("2026-05-19T10:00:00"))
    l2 = await contacts.feedback(cqc_agent, "lgsco", at("2026-05-22T10:00:00"))
    await _answer(client, clock, lgsco_leader, l2, "2026-05-28T10:00:00")
    await _answer(client, clock, cqc_agent, c3, "2026-05-29T10:00:00")
    l4 = await contacts.feedback(cqc_agent, "lgsco", at("2026-05-29T14:00:00"))
    await _answer(client, clock, lgsco_leader, l4, "2026-06-01T08:00:00")
    clock.set(at("2026-06-02T09:00:00"))


# By hand, from record_may's list.
LGSCO_MAY = {
    "received": 4,  # L2, L3, L4, L5
    "responded": 3,  # L1, L2, L5 (L1 came in in April)
    "open_at_month_end": 2,  # L3, L4
    "response_working_days_median": 2.0,  # of 2, 3 and 0
}
LGSCO_APRIL = {
    "received": 1,
    "responded": 0,
    "open_at_month_end": 1,
    "response_working_days_median": None,
}
CQC_MAY = {
    "received": 3,
    "responded": 2,  # C2, C3
    "open_at_month_end": 1,  # C1
    "response_working_days_median": 5.5,  # of 4 and 7
}
NOTHING = {
    "received": 0,
    "responded": 0,
    "open_at_month_end": 0,
    "response_working_days_median": None,
}


async def _report(client: httpx.AsyncClient, leader: Key, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/v1/reports/contact-volumes/{MAY}{query}", headers=leader.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _by_body(report: dict[str, Any]) -> dict[str, tuple[Any, Any, str]]:
    return {
        body["about_org"]: (body["this_month"], body["previous_month"], body["label"])
        for body in report["feedback_figures"]
    }


async def test_the_months_feedback_figures_per_body(
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    await record_may(client, clock, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader)
    report = await _report(client, cqc_leader)
    assert _by_body(report) == {
        "cqc": (CQC_MAY, NOTHING, "CQC"),
        "lgsco": (LGSCO_MAY, LGSCO_APRIL, "LGSCO"),
    }
    # Both bodies' team leaders read the same figures.
    assert (await _report(client, lgsco_leader))["feedback_figures"] == report["feedback_figures"]
    # Each feedback in the list carries its answer.
    items = {item["submitted_at"]: item for group in report["feedback"] for item in group["items"]}
    answered = items["2026-05-22T10:00:00Z"]
    assert answered["state"] == "responded"
    assert answered["remedial_action"] == ANSWER["remedial_action"]
    assert answered["training_issue"] is True
    assert items["2026-05-11T10:00:00Z"]["state"] == "acknowledged"

    # June sees L4 answered (1 working day: Friday 29 May to Monday 1 June), and nothing open.
    clock.set(at("2026-06-02T09:00:00"))
    june = (
        await client.get("/v1/reports/contact-volumes/2026-06", headers=cqc_leader.headers)
    ).json()
    this_june, may, _ = _by_body(june)["lgsco"]
    assert this_june == {
        "received": 0,
        "responded": 1,
        "open_at_month_end": 1,  # L3, still not answered now
        "response_working_days_median": 1.0,
    }
    assert may == LGSCO_MAY


async def test_the_csv_and_the_xlsx_carry_the_figures_and_each_answer(
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    await record_may(client, clock, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader)
    response = await client.get(
        f"/v1/reports/contact-volumes/{MAY}?format=csv", headers=cqc_leader.headers
    )
    rows = {
        (r["to_org"], r["measure"]): r
        for r in csv.DictReader(io.StringIO(response.text))
        if r["measure"].startswith("feedback.")
    }
    median = rows[("cqc", "feedback.response_working_days_median")]
    assert (median["this_month"], median["previous_month"]) == ("5.5", "")
    assert median["direction"] == "Feedback about CQC"
    assert median["measure_label"] == "Working days to answer: median"
    assert rows[("lgsco", "feedback.open_at_month_end")]["this_month"] == "2"

    response = await client.get(
        f"/v1/reports/contact-volumes/{MAY}?format=xlsx", headers=cqc_leader.headers
    )
    sheets = calamine_sheets(response.content)
    summary = sheets["Report"]
    headings = next(i for i, row in enumerate(summary) if row[:3] == FEEDBACK_HEADINGS)

    def table(label: str) -> dict[str, list[Any]]:
        start = next(i for i, row in enumerate(summary) if i > headings and row[0] == label)
        end = next((i for i, row in enumerate(summary) if i > start and not any(row)), None)
        return {row[0]: row[1:3] for row in summary[start + 1 : end]}

    lgsco = table("Feedback about LGSCO")
    assert lgsco["Feedback received in the month"] == [4.0, 1.0]
    assert lgsco["Feedback answered in the month"] == [3.0, 0.0]
    assert lgsco["Not answered at the end of the month"] == [2.0, 1.0]
    assert lgsco["Working days to answer: median"] == [2.0, ""]
    assert table("Feedback about CQC")["Working days to answer: median"] == [5.5, ""]

    header, *feedback = sheets["Feedback"]
    answers = {
        row[header.index("submitted_at")]: dict(zip(header, row, strict=True)) for row in feedback
    }
    # 22 May 10:00 UTC is 11:00 in London.
    answered = answers["2026-05-22 11:00"]
    assert answered["state"] == "responded"
    assert answered["remedial_action"] == ANSWER["remedial_action"]
    assert answered["training_issue"] == "yes"
    assert answered["responded_at"] == "2026-05-28 11:00"
    waiting = answers["2026-05-05 13:00"]
    assert (waiting["state"], waiting["remedial_action"], waiting["training_issue"]) == (
        "submitted",
        "",
        "",
    )


async def test_a_published_version_keeps_its_feedback_figures_and_an_older_one_still_reads(
    app: Any,
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    await record_may(client, clock, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader)
    published = await client.post(
        f"/v1/reports/contact-volumes/{MAY}/publish",
        json={"fluctuation_note": "Two bank holidays."},
        headers=cqc_leader.headers,
    )
    assert published.status_code == 201, published.text
    # Answered after publishing: the published version keeps what it counted.
    l3 = next(
        item
        for group in (await _report(client, cqc_leader))["feedback"]
        for item in group["items"]
        if item["state"] == "acknowledged"
    )
    await _answer(client, clock, lgsco_leader, l3, "2026-06-03T09:00:00")
    report = await _report(client, cqc_leader)
    assert report["figures_source"] == "published"
    assert _by_body(report)["lgsco"][0] == LGSCO_MAY
    # A later answer does not change May's figures (answered in June), so they still agree.
    assert report["live_figures_differ"] is False

    # A version frozen before these figures were counted has none, and reads.
    async with app.state.sessionmaker() as session:
        row = await session.scalar(select(ReportPublication))
        assert row is not None
        old = {k: v for k, v in row.figures.items() if k != "feedback_figures"}
        await session.execute(
            update(ReportPublication).where(ReportPublication.id == row.id).values(figures=old)
        )
        await session.commit()
    report = await _report(client, cqc_leader)
    assert report["feedback_figures"] is None and report["live_figures_differ"] is False
    csv_rows = (
        await client.get(
            f"/v1/reports/contact-volumes/{MAY}?format=csv", headers=cqc_leader.headers
        )
    ).text
    assert "feedback." not in csv_rows
    xlsx = await client.get(
        f"/v1/reports/contact-volumes/{MAY}?format=xlsx", headers=cqc_leader.headers
    )
    assert xlsx.status_code == 200
    assert FEEDBACK_HEADINGS not in calamine_sheets(xlsx.content)["Report"]


def test_the_migration_counts_the_working_days_of_feedback_already_answered(
    tmp_path: Path,
) -> None:
    """Answered on Tuesday 26 May 2026 after coming in on Friday 22 May: Monday 25 is a bank
    holiday, so 1 working day (Tuesday); one not answered stays without."""
    path = tmp_path / "old.db"
    upgrade(sqlite_url(path), "0012_feedback_answers")
    key, answered, waiting = (uuid.uuid4().hex for _ in range(3))
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO api_keys (id, org, role, name, key_hash, key_prefix, created_at) "
            "VALUES (?, 'cqc', 'agent', 'desk', ?, 'hk_x', '2026-05-01 10:00:00.000000')",
            (key, "0" * 64),
        )
        for feedback_id, responded in ((answered, "2026-05-26 09:30:00.000000"), (waiting, None)):
            db.execute(
                "INSERT INTO feedback (id, from_org, about_org, case_references, "
                "reason_for_contact, names_and_times, correct_advice, suggested_action, mailbox, "
                "submitted_at, created_by_key_id, state, responded_at) VALUES (?, 'cqc', "
                "'lgsco', '[\"CAS-1\"]', 'r', 'n', 'c', 's', 'intake@lgo.org.uk', "
                "'2026-05-22 15:00:00.000000', ?, ?, ?)",
                (feedback_id, key, "responded" if responded else "submitted", responded),
            )
    upgrade(sqlite_url(path))
    with sqlite3.connect(path) as db:
        days = dict(db.execute("SELECT id, response_working_days FROM feedback").fetchall())
    assert days == {answered: 1, waiting: None}
