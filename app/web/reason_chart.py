"""A server-side SVG bar chart of one direction's contacts by reason: a horizontal bar per
reason for the month and a thinner one for the month before, on chart.py's round scale. No
script; the same figures are given as a table next to it."""

from markupsafe import Markup, escape

from app.core.months import Month
from app.reports.schemas import ContactVolumeReport, DirectionFigures, ReasonFigures
from app.web.chart import FONT, nice_scale

THIS_COLOUR, BEFORE_COLOUR = "#1d70b8", "#505a5f"  # at least 3:1 against white
WIDTH = 560
LABEL_W, RIGHT, TOP, ROW, AXIS = 200, 40, 8, 44, 24


def reasons_svg(label: str, reasons: list[ReasonFigures], chart_id: str, months: str) -> Markup:
    """`months`: the two months' names as the description reads them ("October 2026 and
    September 2026")."""
    scale = nice_scale(max((max(r.this_month, r.previous_month) for r in reasons), default=0))
    plot_w = WIDTH - LABEL_W - RIGHT
    height = TOP + ROW * len(reasons) + AXIS

    def x(value: float) -> float:
        return LABEL_W + plot_w * value / scale.top

    parts = [
        f'<svg class="chart-reasons" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(label)}: contacts by reason</title>',
        f'<desc id="{chart_id}-desc">For each contact reason, a bar for the contacts of '
        f"{escape(months)}. The same figures are in the table below the chart.</desc>",
    ]
    bottom = TOP + ROW * len(reasons)
    for tick in range(0, scale.top + 1, scale.step):
        tx = x(tick)
        parts.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{TOP}" y2="{bottom}" '
            f'stroke="{"#0b0c0c" if tick == 0 else "#b1b4b6"}" stroke-width="1"/>'
            f'<text x="{tx:.1f}" y="{bottom + 18}" text-anchor="middle" font-size="{FONT}" '
            f'fill="#0b0c0c">{tick}</text>'
        )
    for index, reason in enumerate(reasons):
        top = TOP + ROW * index
        name = escape(reason.label)
        shown = name if len(reason.label) <= 26 else escape(reason.label[:25] + "\u2026")
        parts.append(
            f'<text x="{LABEL_W - 8}" y="{top + 24}" text-anchor="end" font-size="{FONT}" '
            f'fill="#0b0c0c">{shown}</text>'
        )
        for offset, height_, value, colour, when in (
            (6, 18, reason.this_month, THIS_COLOUR, "this month"),
            (26, 10, reason.previous_month, BEFORE_COLOUR, "the month before"),
        ):
            if value:
                parts.append(
                    f'<rect x="{LABEL_W}" y="{top + offset}" width="{x(value) - LABEL_W:.1f}" '
                    f'height="{height_}" fill="{colour}">'
                    f"<title>{name}, {when}: {value}</title></rect>"
                )
    parts.append("</svg>")
    return Markup("".join(parts))


def reason_charts(
    report: ContactVolumeReport, month: Month
) -> list[tuple[DirectionFigures, Markup]]:
    """Each direction that has contact reasons, with its chart (both report pages)."""
    both_months = f"{month.first_day():%B %Y} and {month.previous().first_day():%B %Y}"
    return [
        (d, reasons_svg(d.label, d.reasons, f"reasons-{d.from_org}-{d.to_org}-chart", both_months))
        for d in report.directions
        if d.reasons
    ]
