"""The month's spreadsheet opens whatever text the database holds: rows written before the API
refused a character (or by hand) must not break the XLSX for both bodies, and text that
starts like a formula stays text. Read back with calamine (Rust, not the writer's library)
and with openpyxl."""

import csv
import io
from datetime import UTC, datetime
from typing import Any

import httpx
import openpyxl
from python_calamine import CalamineWorkbook
from sqlalchemy import update

from app.core.clock import FixedClock
from app.core.database import make_sessionmaker
from app.feedback.models import Feedback
from app.reports.exports import FIGURE_COLUMNS, to_csv, to_xlsx
from app.reports.models import ReportPublication
from app.reports.schemas import ContactVolumeReport
from tests.conftest import Key
from tests.helpers import FEEDBACK

R = "\ufffd"  # what a character no spreadsheet can hold is shown as
# Every stored text the XLSX shows, written straight into the rows: (stored, read back).
FEEDBACK_TEXT = {
    "reason_for_contact": (
        '=HYPERLINK("http://evil.example","click")',
        '=HYPERLINK("http://evil.example","click")',
    ),
    "names_and_times": (
        "bell\x07 esc\x1b vt\x0b ff\x0c us\x1f del\x7f nel\x85 tab\tend",
        f"bell{R} esc{R} vt{R} ff{R} us{R} del\x7f nel\x85 tab\tend",
    ),
    "correct_advice": (
        "a\ufffe b\uffff c\ufdd0 d\ufdef e\U0001fffe f\U0010ffff",
        f"a{R} b{R} c{R} d{R} e{R} f{R}",
    ),
    "suggested_action": (
        "_x0041_ stays, \u202eoverride, \U0001f600, line\nbreak",
        "_x0041_ stays, \u202eoverride, \U0001f600, line\nbreak",
    ),
    "mailbox": ("@SUM(1,2)\x1b", f"@SUM(1,2){R}"),
}
REFERENCES = (["+44 1", "-2", "@3", "=4\ufffe"], f"+44 1, -2, @3, =4{R}")
NOTE = ("-1+1 note\uffff\x1b", f"-1+1 note{R}{R}")
PUBLISHER = ("+desk\x0c", f"+desk{R}")


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


def calamine_sheets(body: bytes) -> dict[str, list[list[Any]]]:
    book = CalamineWorkbook.from_filelike(io.BytesIO(body))
    return {name: book.get_sheet_by_name(name).to_python() for name in book.sheet_names}


async def test_the_months_xlsx_opens_whatever_text_is_stored_and_keeps_formulas_as_text(
    app: Any,
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    cqc_leader: Key,
    is_postgres: bool,
) -> None:
    clock.set(at("2026-10-20T10:00:00"))
    submitted = await client.post("/v1/feedback", json=FEEDBACK, headers=cqc_agent.headers)
    assert submitted.status_code == 201, submitted.text
    clock.set(at("2026-11-05T09:00:00"))
    published = await client.post(
        "/v1/reports/contact-volumes/2026-10/publish",
        json={"fluctuation_note": "None."},
        headers=cqc_leader.headers,
    )
    assert published.status_code == 201, published.text

    stored = {field: value for field, (value, _) in FEEDBACK_TEXT.items()}
    if not is_postgres:  # PostgreSQL's text cannot hold NUL at all
        stored["names_and_times"] = "nul\x00 " + stored["names_and_times"]
    async with make_sessionmaker(app.state.engine)() as session:
        await session.execute(update(Feedback).values(case_references=REFERENCES[0], **stored))
        await session.execute(
            update(ReportPublication).values(
                fluctuation_note=NOTE[0], published_by_name=PUBLISHER[0]
            )
        )
        await session.commit()

    response = await client.get(
        "/v1/reports/contact-volumes/2026-10?format=xlsx", headers=cqc_leader.headers
    )
    assert response.status_code == 200, response.text

    sheets = calamine_sheets(response.content)
    header, row = sheets["Feedback"]
    cells = dict(zip(header, row, strict=True))
    assert cells["case_references"] == REFERENCES[1]
    for field, (_, shown) in FEEDBACK_TEXT.items():
        column = "sent_to" if field == "mailbox" else field
        expected = f"nul{R} {shown}" if field == "names_and_times" and not is_postgres else shown
        assert cells[column] == expected, field
    about = {label: value for label, value in sheets["About"]}
    assert about["Reasons for fluctuations"] == NOTE[1]
    assert about["Published by"] == f"{PUBLISHER[1]} (cqc)"

    # The writer's own library reads the same text, and every cell of it as text, not formula.
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    feedback_sheet = book["Feedback"]
    for cell in feedback_sheet[2]:
        if isinstance(cell.value, str):
            assert cell.data_type == "s", (cell.coordinate, cell.value)
    assert feedback_sheet["E2"].value == FEEDBACK_TEXT["reason_for_contact"][1]

    csv_response = await client.get(
        "/v1/reports/contact-volumes/2026-10?format=csv", headers=cqc_leader.headers
    )
    rows = list(csv.reader(io.StringIO(csv_response.content.decode("utf-8"))))
    assert rows[0] == FIGURE_COLUMNS and len(rows) > 1


async def test_an_export_writes_text_no_database_can_hold_and_csv_cells_never_start_a_formula(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, cqc_leader: Key
) -> None:
    """Lone surrogates cannot be stored (UTF-8 refuses them), but the exporters do not rely
    on that; and a direction's label, the CSV's only text, is written so that no spreadsheet
    runs it."""
    clock.set(at("2026-10-20T10:00:00"))
    await client.post("/v1/feedback", json=FEEDBACK, headers=cqc_agent.headers)
    clock.set(at("2026-11-05T09:00:00"))
    got = await client.get("/v1/reports/contact-volumes/2026-10", headers=cqc_leader.headers)
    report = ContactVolumeReport.model_validate(got.json())
    report.feedback[0].items[0].reason_for_contact = "lone \ud800 surrogate \udfff"
    report.directions[0].label = '=HYPERLINK("http://evil.example")'
    report.directions[1].label = "@cmd|' /C calc'!A0"

    sheets = calamine_sheets(to_xlsx(report))
    header, row = sheets["Feedback"]
    assert dict(zip(header, row, strict=True))["reason_for_contact"] == f"lone {R} surrogate {R}"
    labels = {r[1] for r in csv.reader(io.StringIO(to_csv(report)))}
    assert '\'=HYPERLINK("http://evil.example")' in labels
    assert "'@cmd|' /C calc'!A0" in labels
    assert all(not label.startswith(("=", "+", "-", "@")) for label in labels)
