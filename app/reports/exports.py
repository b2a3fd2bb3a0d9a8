"""The report as CSV and XLSX: both are built from the same rows as the JSON figures."""

import csv
import io
import re
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from fastapi.responses import Response
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.worksheet.worksheet import Worksheet

from app.core.months import LONDON
from app.feedback.schemas import FeedbackRead
from app.reports.schemas import (
    ANSWER_MEASURES,
    CALLBACK_MEASURES,
    FEEDBACK_MEASURES,
    MEASURES,
    AnswerFigureSet,
    CallbackFigureSet,
    ContactVolumeReport,
    DirectionFigures,
    FigureSet,
)


class ReportFormat(StrEnum):
    json = "json"
    csv = "csv"
    xlsx = "xlsx"


MEDIA_TYPES = {
    ReportFormat.json: "application/json",
    ReportFormat.csv: "text/csv; charset=utf-8",
    ReportFormat.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def negotiate(requested: ReportFormat | None, accept: str | None) -> ReportFormat:
    """`?format=` wins; otherwise the first of CSV or XLSX named in Accept; otherwise JSON."""
    if requested is not None:
        return requested
    for part in (accept or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        for fmt in (ReportFormat.csv, ReportFormat.xlsx):
            if media == MEDIA_TYPES[fmt].split(";", 1)[0]:
                return fmt
    return ReportFormat.json


FIGURE_COLUMNS = [
    "month",
    "direction",
    "from_org",
    "to_org",
    "measure",
    "measure_label",
    "this_month",
    "previous_month",
    "change",
    "change_percent",
]


def figure_rows(report: ContactVolumeReport) -> Iterator[list[Any]]:
    """One row per direction and measure, each direction's call back figures after its
    measures (named `callbacks.<figure>`, with no change columns: medians do not subtract),
    its time to answer (`answer.<figure>`) and its contacts by reason (`reasons.<reason>`,
    `reasons.none` for none given), then the totals over every direction."""
    sets: list[tuple[str, str, str, FigureSet]] = [
        (d.label, d.from_org, d.to_org, d) for d in report.directions
    ]
    sets.append(("All directions", "all", "all", report.totals))
    for label, from_org, to_org, figures in sets:
        for measure, measure_label in MEASURES:
            change = getattr(figures.change, measure)
            yield [
                report.month,
                label,
                from_org,
                to_org,
                measure,
                measure_label,
                getattr(figures.this_month, measure),
                getattr(figures.previous_month, measure),
                change.absolute,
                change.percent,
            ]
        if isinstance(figures, DirectionFigures):
            yield from counted_rows(report.month, label, from_org, to_org, figures)
        callbacks = getattr(figures, "callbacks", None)
        if callbacks is None:  # the totals, or a version frozen before they were counted
            continue
        for measure, measure_label in CALLBACK_MEASURES:
            yield [
                report.month,
                label,
                from_org,
                to_org,
                f"callbacks.{measure}",
                measure_label,
                getattr(callbacks.this_month, measure),
                getattr(callbacks.previous_month, measure),
                None,
                None,
            ]
    yield from feedback_figure_rows(report)


def feedback_figure_rows(report: ContactVolumeReport) -> Iterator[list[Any]]:
    """Per body, the figures of the feedback about it (named `feedback.<figure>`, from
    `all` bodies to it, no change columns); none in a version published before them."""
    for body in report.feedback_figures or []:
        for measure, measure_label in FEEDBACK_MEASURES:
            yield [
                report.month,
                f"Feedback about {body.label}",
                "all",
                body.about_org,
                f"feedback.{measure}",
                measure_label,
                getattr(body.this_month, measure),
                getattr(body.previous_month, measure),
                None,
                None,
            ]


def filename(report: ContactVolumeReport, fmt: ReportFormat) -> str:
    version = f"-v{report.publication.version}" if report.publication else ""
    return f"contact-volumes-{report.month}{version}.{fmt.value}"


# Characters a spreadsheet cannot hold, whatever the database holds (rows written before the
# API refused them, or by hand): outside XML 1.0's Char production (C0 controls other than tab
# and line breaks, lone surrogates, U+FFFE/U+FFFF) and the other Unicode noncharacters. Each is
# shown as U+FFFD, so the file always opens and the rest of the text is kept.
_UNWRITABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"\\U{plane:04x}fffe\\U{plane:04x}ffff" for plane in range(17))
    + "]"
)
# Readers of XLSX (Excel, calamine) decode "_xHHHH_" in text as the character HHHH; a literal
# one is written with its underscore escaped as "_x005F_" (ECMA-376 Part 1, 22.9.2.19).
_OOXML_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)")
# Text a spreadsheet program may run as a formula when it opens a CSV (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def writable_text(value: str) -> str:
    """`value` with every character no spreadsheet can hold replaced by U+FFFD."""
    return _UNWRITABLE.sub("\ufffd", value)


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        value = writable_text(value)
        if value.startswith(_FORMULA_START):
            return "'" + value  # shown as text, never evaluated
    return value


def to_csv(report: ContactVolumeReport) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(FIGURE_COLUMNS)
    for row in figure_rows(report):
        writer.writerow([_csv_cell(value) for value in row])
    return out.getvalue()


def _local(moment: datetime | None) -> str:
    return moment.astimezone(LONDON).strftime("%Y-%m-%d %H:%M") if moment else ""


XLSX_CELL_MAX = 32767  # characters a cell holds (Excel's specification and limits)


def _xlsx_text(value: Any) -> Any:
    if isinstance(value, str):
        value = _OOXML_ESCAPE.sub("_x005F_", writable_text(value))
        if len(value) > XLSX_CELL_MAX:
            value = value[: XLSX_CELL_MAX - 1] + "\u2026"
    return value


def _append_text(sheet: Worksheet, values: list[Any]) -> None:
    """Append a row, keeping text that starts with '=' (or '+', '-', '@') as text, never a
    formula, and any stored text writable (see `writable_text`)."""
    sheet.append([_xlsx_text(value) for value in values])
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"


def _header(sheet: Worksheet, values: list[str]) -> None:
    _append_text(sheet, values)
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"  # the header is always the first row


SUMMARY_SHEET = "Report"
SUMMARY_HEADINGS = ["Measure", "This month", "Previous month", "Change", "Change %"]
_COUNT = "#,##0"
_SIGNED = "+#,##0;-#,##0;0"
_SIGNED_PERCENT = "+0.0%;-0.0%;0.0%"
_STATUS_WORDS = {
    "open": "Open: the month has not ended",
    "due": "Due: not signed yet",
    "overdue": "Overdue: not signed by the due date",
    "awaiting_signature": "Awaiting a body's signature",
    "complete": "Complete: signed by both bodies on time",
    "complete_late": "Complete: signed by both bodies after the due date",
}


def _month_words(month: str) -> str:
    year, number = month.split("-")
    return datetime(int(year), int(number), 1).strftime("%B %Y")


def _status_words(report: ContactVolumeReport) -> str:
    words = _STATUS_WORDS[report.status.value]
    if report.awaiting_bodies:
        words += ": " + " and ".join(b.upper() for b in report.awaiting_bodies)
    return words


def _summary_sheet(sheet: Worksheet, report: ContactVolumeReport) -> None:
    """The first sheet, laid out for people as the page is: what the report is, then one
    table per direction with its measures by label, the change and the change in percent."""
    sheet.title = SUMMARY_SHEET
    publication = report.publication
    starts = report.period.starts_at.astimezone(LONDON)
    last_day = report.period.ends_at.astimezone(LONDON).date() - timedelta(days=1)
    _append_text(sheet, [f"Contact volumes report: {_month_words(report.month)}"])
    sheet["A1"].font = Font(bold=True, size=16)
    for label, value in [
        ("Period", f"{starts:%-d} to {last_day:%-d %B %Y} (UK time)"),
        ("Due", f"{report.due_date:%-d %B %Y}"),
        ("Status", _status_words(report)),
        (
            "Figures",
            f"Version {publication.version}, published {_local(publication.published_at)} "
            f"by {publication.published_by.name} ({publication.published_by.org.upper()})"
            if publication
            else f"Counted at {_local(report.generated_at)}; not published yet",
        ),
        ("Compared with", _month_words(report.previous_month)),
    ]:
        _append_text(sheet, [label, value])
        sheet.cell(sheet.max_row, 1).font = Font(bold=True)
    sheet.append([])
    _header(sheet, SUMMARY_HEADINGS)
    freeze = f"A{sheet.max_row + 1}"
    sheet.freeze_panes = freeze  # the headings stay in view
    sets: list[tuple[str, FigureSet]] = [(d.label, d) for d in report.directions]
    sets.append(("All directions", report.totals))
    for label, figures in sets:
        _append_text(sheet, [label])
        sheet.cell(sheet.max_row, 1).font = Font(bold=True, size=13)
        for measure, measure_label in MEASURES:
            change = getattr(figures.change, measure)
            percent = None if change.percent is None else change.percent / 100
            sheet.append(
                [
                    _xlsx_text(measure_label),
                    getattr(figures.this_month, measure),
                    getattr(figures.previous_month, measure),
                    change.absolute,
                    percent,
                ]
            )
            row = sheet[sheet.max_row]
            row[0].data_type = "s"
            row[0].alignment = Alignment(indent=1)
            for cell, number_format in zip(
                row[1:], (_COUNT, _COUNT, _SIGNED, _SIGNED_PERCENT), strict=True
            ):
                cell.number_format = number_format
        sheet.append([])
    with_callbacks = [(d.label, d.callbacks) for d in report.directions if d.callbacks]
    if with_callbacks:
        # Below the contact volumes, its own table: medians and shares have no change column.
        _header(sheet, CALLBACK_HEADINGS)
        sheet.freeze_panes = freeze
        for label, callbacks in with_callbacks:
            _append_text(sheet, [label])
            sheet.cell(sheet.max_row, 1).font = Font(bold=True, size=13)
            _callback_rows(sheet, callbacks)
            sheet.append([])
    _counted_tables(sheet, report, freeze)
    _feedback_figure_table(sheet, report)
    sheet.column_dimensions["A"].width = 44
    for column in "BCDE":
        sheet.column_dimensions[column].width = 16


_HOURS = "0.0#"
_PERCENT = "0.0%"


CALLBACK_HEADINGS = ["Call backs", "This month", "Previous month"]
FEEDBACK_HEADINGS = ["Misdirection feedback", "This month", "Previous month"]
_DAYS = "0.0"


def _feedback_figure_table(sheet: Worksheet, report: ContactVolumeReport) -> None:
    """Per body, how it answered the feedback about it: this month and the previous one."""
    if not report.feedback_figures:  # a version published before they were counted
        return
    freeze = sheet.freeze_panes  # the contact volumes' headings stay the ones in view
    _header(sheet, FEEDBACK_HEADINGS)
    sheet.freeze_panes = freeze
    for body in report.feedback_figures:
        _append_text(sheet, [f"Feedback about {body.label}"])
        sheet.cell(sheet.max_row, 1).font = Font(bold=True, size=13)
        for measure, measure_label in FEEDBACK_MEASURES:
            values = [getattr(body.this_month, measure), getattr(body.previous_month, measure)]
            sheet.append([_xlsx_text(measure_label), *values])
            row = sheet[sheet.max_row]
            row[0].data_type = "s"
            row[0].alignment = Alignment(indent=1)
            for cell in row[1:]:
                cell.number_format = _DAYS if measure.endswith("_median") else _COUNT
        sheet.append([])


def _measure_rows(
    sheet: Worksheet,
    measures: Sequence[tuple[str, str]],
    this_month: Any,
    previous_month: Any,
    durations: tuple[str, str],
) -> None:
    """A direction's measured figures (call backs, time to answer): this month and the
    previous one (no change columns: a median does not subtract); a blank cell where nothing
    was measured. A measure whose name holds `durations[0]` takes the format `durations[1]`."""
    marker, duration_format = durations
    for measure, measure_label in measures:
        values = [getattr(this_month, measure), getattr(previous_month, measure)]
        if measure.endswith("_percent"):
            values = [None if v is None else v / 100 for v in values]
            number_format = _PERCENT
        elif marker in measure:
            number_format = duration_format
        else:
            number_format = _COUNT
        sheet.append([_xlsx_text(measure_label), *values])
        row = sheet[sheet.max_row]
        row[0].data_type = "s"
        row[0].alignment = Alignment(indent=1)
        for cell in row[1:]:
            cell.number_format = number_format


def _callback_rows(sheet: Worksheet, callbacks: CallbackFigureSet) -> None:
    _measure_rows(
        sheet,
        CALLBACK_MEASURES,
        callbacks.this_month,
        callbacks.previous_month,
        ("_hours_", _HOURS),
    )


# Each feedback's answer, by the body it is about, on the feedback sheet.
FEEDBACK_ANSWER_COLUMNS = [
    "state",
    "acknowledged_at",
    "responded_at",
    "remedial_action",
    "training_issue",
]


def feedback_answer_cells(item: FeedbackRead) -> list[Any]:
    training = None if item.training_issue is None else ("yes" if item.training_issue else "no")
    return [
        item.state.value,
        _local(item.acknowledged_at),
        _local(item.responded_at),
        item.remedial_action or "",
        training or "",
    ]


def to_xlsx(report: ContactVolumeReport) -> bytes:
    book = Workbook()
    summary = book.active
    assert summary is not None
    _summary_sheet(summary, report)
    figures = book.create_sheet("Contact volumes")
    _header(figures, FIGURE_COLUMNS)
    for row in figure_rows(report):
        _append_text(figures, row)
    for column, width in zip("ABCDEFGHIJ", (9, 16, 9, 9, 34, 44, 11, 15, 9, 15), strict=True):
        figures.column_dimensions[column].width = width

    about = book.create_sheet("About")
    publication = report.publication
    for label, value in [
        ("Month", report.month),
        (
            "Period (UK time)",
            f"{report.period.starts_at.astimezone(LONDON):%d %B %Y} to "
            f"{report.period.ends_at.astimezone(LONDON):%d %B %Y} (exclusive)",
        ),
        ("Due date", report.due_date.isoformat()),
        ("Status", report.status.value),
        ("Figures", "published version " + str(publication.version) if publication else "live"),
        ("Published at (UK time)", _local(publication.published_at) if publication else ""),
        (
            "Published by",
            f"{publication.published_by.name} ({publication.published_by.org})"
            if publication
            else "",
        ),
        ("On time", ("yes" if publication.on_time else "no") if publication else ""),
        ("Reasons for fluctuations", publication.fluctuation_note if publication else ""),
        ("Generated at (UK time)", _local(report.generated_at)),
    ]:
        _append_text(about, [label, value])
    about.column_dimensions["A"].width = 26
    about.column_dimensions["B"].width = 80

    feedback = book.create_sheet("Feedback")
    _header(
        feedback,
        [
            "from_org",
            "about_org",
            "submitted_at",
            "case_references",
            "reason_for_contact",
            "names_and_times",
            "correct_advice",
            "suggested_action",
            "occurred_at",
            "sent_to",
            *FEEDBACK_ANSWER_COLUMNS,
        ],
    )
    for group in report.feedback:
        for item in group.items:
            _append_text(
                feedback,
                [
                    item.from_org,
                    item.about_org,
                    _local(item.submitted_at),
                    ", ".join(item.case_references),
                    item.reason_for_contact,
                    item.names_and_times,
                    item.correct_advice,
                    item.suggested_action,
                    _local(item.occurred_at),
                    item.mailbox,
                    *feedback_answer_cells(item),
                ],
            )

    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def attachment(report: ContactVolumeReport, fmt: ReportFormat) -> Response:
    """The report as a CSV or XLSX download."""
    body = to_csv(report).encode("utf-8") if fmt is ReportFormat.csv else to_xlsx(report)
    return Response(
        body,
        media_type=MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="{filename(report, fmt)}"',
            "Vary": "Accept",
        },
    )


# --- time to answer and contacts by reason (issue 16) ------------------------------------


def counted_rows(
    month: str, label: str, from_org: str, to_org: str, figures: DirectionFigures
) -> Iterator[list[Any]]:
    """A direction's time to answer (no change columns: medians do not subtract) and its
    contacts by reason (with the change), where its version has them."""
    if figures.answer is not None:
        for measure, measure_label in ANSWER_MEASURES:
            yield [
                month,
                label,
                from_org,
                to_org,
                f"answer.{measure}",
                measure_label,
                getattr(figures.answer.this_month, measure),
                getattr(figures.answer.previous_month, measure),
                None,
                None,
            ]
    for reason in figures.reasons or []:
        change = reason.this_month - reason.previous_month
        yield [
            month,
            label,
            from_org,
            to_org,
            f"reasons.{reason.contact_reason or 'none'}",
            f"Contact reason: {reason.label}",
            reason.this_month,
            reason.previous_month,
            change,
            round(change * 100 / reason.previous_month, 1) if reason.previous_month else None,
        ]


ANSWER_HEADINGS = ["Time to answer", "This month", "Previous month"]
REASON_HEADINGS = ["Contacts by reason", "This month", "Previous month", "Change"]
_SECONDS = "0.0"


def _answer_rows(sheet: Worksheet, answer: AnswerFigureSet) -> None:
    _measure_rows(
        sheet, ANSWER_MEASURES, answer.this_month, answer.previous_month, ("_seconds_", _SECONDS)
    )


def _counted_tables(sheet: Worksheet, report: ContactVolumeReport, freeze: str) -> None:
    """Below the call backs on the first sheet: each direction's time to answer, then its
    contacts by reason, each table under its own headings as the page shows them."""
    answered = [(d.label, d.answer) for d in report.directions if d.answer]
    if answered:
        _header(sheet, ANSWER_HEADINGS)
        sheet.freeze_panes = freeze
        for label, answer in answered:
            _append_text(sheet, [label])
            sheet.cell(sheet.max_row, 1).font = Font(bold=True, size=13)
            _answer_rows(sheet, answer)
            sheet.append([])
    with_reasons = [(d.label, d.reasons) for d in report.directions if d.reasons]
    if with_reasons:
        _header(sheet, REASON_HEADINGS)
        sheet.freeze_panes = freeze
        for label, reasons in with_reasons:
            _append_text(sheet, [label])
            sheet.cell(sheet.max_row, 1).font = Font(bold=True, size=13)
            for reason in reasons:
                sheet.append(
                    [
                        _xlsx_text(reason.label),
                        reason.this_month,
                        reason.previous_month,
                        reason.this_month - reason.previous_month,
                    ]
                )
                row = sheet[sheet.max_row]
                row[0].data_type = "s"
                row[0].alignment = Alignment(indent=1)
                for cell, number_format in zip(row[1:4], (_COUNT, _COUNT, _SIGNED), strict=True):
                    cell.number_format = number_format
            sheet.append([])
