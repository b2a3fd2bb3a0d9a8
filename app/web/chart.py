"""A server-side SVG chart of the last 12 months of one direction: stacked bars of warm
transfers, call back requests and signposts. No script; the figures are also given as a table
next to it for screen readers and for anyone who prefers numbers."""

import math
from dataclasses import dataclass

from markupsafe import Markup, escape

from app.reports.service import TrendSeries

# GOV.UK palette colours with at least 3:1 contrast against white.
SERIES = [
    ("warm_transfers_connected", "Warm transfers connected", "#1d70b8"),
    ("callback_requests", "Call back requests", "#912b88"),
    ("signposts", "Signposts", "#00703c"),
]

WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 12, 44
FONT = 14


@dataclass(frozen=True)
class Scale:
    top: int
    step: int


def nice_scale(largest: int, ticks: int = 4) -> Scale:
    """A y-axis top and step in round numbers (1, 2, 5 x 10^n) that fits `largest`."""
    if largest <= 0:
        return Scale(top=ticks, step=1)
    raw = largest / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(1, int(step))
    return Scale(top=step * math.ceil(largest / step), step=step)


def shared_scale(series: list[TrendSeries]) -> Scale:
    """One scale for every direction, so their charts compare at a glance."""
    largest = max((figures.total_contacts for s in series for _, figures in s.points), default=0)
    return nice_scale(largest)


def svg(series: TrendSeries, scale: Scale, chart_id: str) -> Markup:
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(series.points), 1)
    bar = slot * 0.64

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / scale.top

    first, last = series.points[0][0], series.points[-1][0]
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(series.label)}: contacts per month</title>',
        f'<desc id="{chart_id}-desc">Stacked bars for each month from '
        f"{first.first_day():%B %Y} to {last.first_day():%B %Y}: "
        f"{', '.join(label.lower() for _, label, _ in SERIES)}. "
        "The same figures are in the table below the chart.</desc>",
    ]
    for tick in range(0, scale.top + 1, scale.step):
        ty = y(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="{"#0b0c0c" if tick == 0 else "#b1b4b6"}" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="{FONT}" '
            f'fill="#0b0c0c">{tick}</text>'
        )
    for index, (month, figures) in enumerate(series.points):
        x = LEFT + slot * index + (slot - bar) / 2
        base = 0
        for field, label, colour in SERIES:
            value = getattr(figures, field)
            if value:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y(base + value):.1f}" width="{bar:.1f}" '
                    f'height="{y(base) - y(base + value):.1f}" fill="{colour}">'
                    f"<title>{month.first_day():%B %Y}, {label.lower()}: {value}</title></rect>"
                )
            base += value
        label_x = LEFT + slot * index + slot / 2
        parts.append(
            f'<text x="{label_x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
            f'font-size="{FONT}" fill="#0b0c0c">{month.first_day():%b}</text>'
        )
        if index == 0 or month.month == 1:
            parts.append(
                f'<text x="{label_x:.1f}" y="{HEIGHT - BOTTOM + 36}" text-anchor="middle" '
                f'font-size="{FONT}" fill="#505a5f">{month.year}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


# Working hours to the first attempt: the median as a bar, the 90th percentile as a tick.
MEDIAN_COLOUR, P90_COLOUR = "#1d70b8", "#0b0c0c"


def hours_scale(series: list[TrendSeries]) -> Scale:
    """One scale of working hours for every direction's chart of time to the first attempt."""
    largest = max(
        (v for s in series for _, *values in s.first_attempt_hours for v in values if v),
        default=0.0,
    )
    return nice_scale(math.ceil(largest))


def hours_svg(series: TrendSeries, scale: Scale, chart_id: str) -> Markup:
    """The direction's working hours from request to first attempt over its months: a bar
    for the median, a tick for the 90th percentile; a month with no first attempt is empty."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    points = series.first_attempt_hours
    slot = plot_w / max(len(points), 1)
    bar = slot * 0.5

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * value / scale.top

    first, last = points[0][0], points[-1][0]
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(series.label)}: working hours to the first '
        "attempt to call back</title>",
        f'<desc id="{chart_id}-desc">For each month from {first.first_day():%B %Y} to '
        f"{last.first_day():%B %Y}, a bar for the median working hours from request to first "
        "attempt and a line across it for the 90th percentile. "
        "The same figures are in the table below the chart.</desc>",
    ]
    for tick in range(0, scale.top + 1, scale.step):
        ty = y(tick)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" '
            f'stroke="{"#0b0c0c" if tick == 0 else "#b1b4b6"}" stroke-width="1"/>'
            f'<text x="{LEFT - 6}" y="{ty + 4:.1f}" text-anchor="end" font-size="{FONT}" '
            f'fill="#0b0c0c">{tick}</text>'
        )
    for index, (month, median, p90) in enumerate(points):
        x = LEFT + slot * index + (slot - bar) / 2
        name = f"{month.first_day():%B %Y}"
        if median is not None:
            parts.append(
                f'<rect x="{x:.1f}" y="{y(median):.1f}" width="{bar:.1f}" '
                f'height="{y(0) - y(median):.1f}" fill="{MEDIAN_COLOUR}">'
                f"<title>{name}, median: {median:.1f} working hours</title></rect>"
            )
        if p90 is not None:
            parts.append(
                f'<line x1="{x - 4:.1f}" x2="{x + bar + 4:.1f}" y1="{y(p90):.1f}" '
                f'y2="{y(p90):.1f}" stroke="{P90_COLOUR}" stroke-width="3">'
                f"<title>{name}, 90th percentile: {p90:.1f} working hours</title></line>"
            )
        label_x = LEFT + slot * index + slot / 2
        parts.append(
            f'<text x="{label_x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" '
            f'font-size="{FONT}" fill="#0b0c0c">{month.first_day():%b}</text>'
        )
        if index == 0 or month.month == 1:
            parts.append(
                f'<text x="{label_x:.1f}" y="{HEIGHT - BOTTOM + 36}" text-anchor="middle" '
                f'font-size="{FONT}" fill="#505a5f">{month.year}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
