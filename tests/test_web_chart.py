"""The report page's server-side SVG chart."""

import re

from app.core.months import Month
from app.reports.schemas import Figures
from app.reports.service import ZERO, TrendSeries
from app.web.chart import Scale, nice_scale, shared_scale, svg


def test_the_y_axis_uses_round_steps() -> None:
    assert nice_scale(0) == Scale(top=4, step=1)
    assert nice_scale(3) == Scale(top=3, step=1)
    assert nice_scale(10) == Scale(top=10, step=5)
    assert nice_scale(37) == Scale(top=40, step=10)
    assert nice_scale(1234) == Scale(top=1500, step=500)


def series(label: str, totals: list[int]) -> TrendSeries:
    months = [Month(2025, 11)]
    while len(months) < len(totals):
        months.append(months[-1].next())
    points = [
        (m, Figures.model_validate({**ZERO.model_dump(), "signposts": t, "total_contacts": t}))
        for m, t in zip(months, totals, strict=True)
    ]
    return TrendSeries(("cqc", "lgsco"), label, points)


def test_the_chart_is_accessible_svg_with_one_bar_per_month_with_contacts() -> None:
    trend = series("CQC to <LGSCO>", [0] * 11 + [7])
    drawing = str(svg(trend, shared_scale([trend]), "chart-x"))
    assert drawing.startswith('<svg class="chart"') and 'role="img"' in drawing
    assert 'aria-labelledby="chart-x-title chart-x-desc"' in drawing
    assert "CQC to &lt;LGSCO&gt;: contacts per month" in drawing  # escaped
    assert "from November 2025 to October 2026" in drawing
    assert len(re.findall(r"<rect ", drawing)) == 1
    assert "<title>October 2026, signposts: 7</title>" in drawing
    assert "<script" not in drawing


def test_directions_share_one_scale() -> None:
    assert shared_scale([series("a", [1] * 12), series("b", [0] * 11 + [90])]) == Scale(100, 50)
