"""The month's spreadsheet opens on a sheet laid out for people, as the page is: the title, the
period, the due date and the status in words, then one table per direction with the measures by
label, this month, the previous month, the change and the change in percent. Read back with
calamine (not the writer's library), and its layout (number formats, frozen headings, column
widths) with openpyxl."""

import io
from datetime import UTC, datetime
from typing import Any

import openpyxl
import pytest
from python_calamine import CalamineWorkbook

from app.core.clock import FixedClock
from app.reports.exports import CALLBACK_HEADINGS, SUMMARY_HEADINGS
from app.reports.schemas import MEASURES
from tests.conftest import Key
from tests.events import Contacts
from tests.test_report_api import OCT, record_october


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


@pytest.fixture
def contacts(client, clock: FixedClock) -> Contacts:  # type: ignore[no-untyped-def]
    return Contacts(client, clock)


def tables(rows: list[list[Any]]) -> dict[str, dict[str, list[Any]]]:
    """{direction label: {measure label: [this, previous, change, change %]}} below the
    headings row (up to the call backs' own headings), a table being a label row followed by
    its measure rows."""
    start = next(
        i for i, row in enumerate(rows) if row[: len(SUMMARY_HEADINGS)] == SUMMARY_HEADINGS
    )
    end = next(
        (i for i, row in enumerate(rows) if row[: len(CALLBACK_HEADINGS)] == CALLBACK_HEADINGS),
        len(rows),
    )
    found: dict[str, dict[str, list[Any]]] = {}
    current: dict[str, list[Any]] = {}
    for row in rows[start + 1 : end]:
        if not any(cell not in ("", None) for cell in row):
            continue
        if all(cell in ("", None) for cell in row[1:5]):
            current = found.setdefault(row[0], {})
        else:
            current[row[0]] = row[1:5]
    return found


async def test_the_first_sheet_reads_like_the_page(
    client, contacts: Contacts, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:  # type: ignore[no-untyped-def]
    await record_october(contacts, cqc_agent, lgsco_agent)
    clock.set(at("2026-11-20T09:00:00"))  # past the due date, not published
    report = (
        await client.get(f"/v1/reports/contact-volumes/{OCT}", headers=cqc_leader.headers)
    ).json()
    xlsx = await client.get(
        f"/v1/reports/contact-volumes/{OCT}?format=xlsx", headers=cqc_leader.headers
    )
    assert xlsx.status_code == 200

    book = CalamineWorkbook.from_filelike(io.BytesIO(xlsx.content))
    assert book.sheet_names[0] == "Report"
    assert book.sheet_names[1:] == ["Contact volumes", "About", "Feedback"]  # data as before
    rows = book.get_sheet_by_name("Report").to_python()
    assert rows[0][0] == "Contact volumes report: October 2026"
    about = {row[0]: row[1] for row in rows[1:7] if row[0]}
    assert about["Period"] == "1 to 31 October 2026 (UK time)"
    assert about["Due"] == "13 November 2026"  # 10 working days from Monday 2 November
    assert about["Status"] == "Overdue: not signed by the due date"
    assert about["Compared with"] == "September 2026"
    assert about["Figures"].startswith("Counted at ") and "not published yet" in about["Figures"]

    got = tables(rows)
    expected_sets = [(d["label"], d) for d in report["directions"]] + [
        ("All directions", report["totals"])
    ]
    assert list(got) == [label for label, _ in expected_sets]
    for label, figures in expected_sets:
        for measure, measure_label in MEASURES:
            change = figures["change"][measure]
            percent = None if change["percent"] is None else change["percent"] / 100
            this, previous, absolute, share = got[label][measure_label]
            assert [int(this), int(previous), int(absolute)] == [
                figures["this_month"][measure],
                figures["previous_month"][measure],
                change["absolute"],
            ], (label, measure_label)
            assert (share in ("", None)) if percent is None else share == pytest.approx(percent)
    # A figure a person checks by eye: CQC to LGSCO connected 3 in October, 2 in September.
    assert got["CQC to LGSCO"]["Warm transfers connected"][:3] == [3, 2, 1]

    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))["Report"]
    heading_row = next(r for r in sheet.iter_rows() if r[0].value == "Measure")
    assert [c.value for c in heading_row[:5]] == SUMMARY_HEADINGS
    assert all(c.font.bold for c in heading_row[:5])
    assert sheet.freeze_panes == f"A{heading_row[0].row + 1}"  # headings stay in view
    first_figure = sheet.cell(heading_row[0].row + 2, 2)
    assert first_figure.number_format == "#,##0"
    assert sheet.cell(first_figure.row, 4).number_format.startswith("+")
    assert sheet.cell(first_figure.row, 5).number_format.endswith("%")
    assert sheet.column_dimensions["A"].width >= 40


async def test_a_published_month_says_who_published_it_and_whether_on_time(
    client,
    contacts: Contacts,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:  # type: ignore[no-untyped-def]
    await record_october(contacts, cqc_agent, lgsco_agent)
    clock.set(at("2026-11-05T09:00:00"))
    for leader in (cqc_leader, lgsco_leader):
        signed = await client.post(
            f"/v1/reports/contact-volumes/{OCT}/sign",
            json={"fluctuation_note": "Steady."},
            headers=leader.headers,
        )
        assert signed.status_code == 201, signed.text
    xlsx = await client.get(
        f"/v1/reports/contact-volumes/{OCT}?format=xlsx", headers=cqc_leader.headers
    )
    rows = (
        CalamineWorkbook.from_filelike(io.BytesIO(xlsx.content))
        .get_sheet_by_name("Report")
        .to_python()
    )
    about = {row[0]: row[1] for row in rows[1:7] if row[0]}
    assert about["Status"] == "Complete: signed by both bodies on time"
    assert about["Figures"].startswith("Version 1, published ") and "(CQC)" in about["Figures"]
