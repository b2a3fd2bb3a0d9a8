"""A team leader reads the month's call back figures and the chart of time to the first
attempt in a real browser (Debian's chromium), with and without JavaScript, axe-clean."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from app.core.clock import FixedClock
from tests.a11y import assert_accessible
from tests.conftest import Key
from tests.test_report_callbacks import NOV, record_november


@pytest.fixture
async def api(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
async def test_the_call_back_figures_and_chart_in_a_browser(
    chromium: str,
    live_server: str,
    api: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    artifacts_dir: Path,
    javascript: bool,
) -> None:
    from playwright.async_api import async_playwright, expect

    await record_november(api, clock, cqc_agent, lgsco_agent)
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium)
        try:
            context = await browser.new_context(locale="en-GB", java_script_enabled=javascript)
            page = await context.new_page()
            await page.goto(f"{live_server}/reports/{NOV}")
            await page.get_by_label("Your key").fill(cqc_leader.secret)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="November 2026", level=1)).to_be_visible()

            table = page.get_by_role("table", name="CQC to LGSCO: call backs", exact=True)
            row = table.locator('tr[data-measure="first_attempt_hours_p90"] td')
            assert (await row.all_inner_texts())[0] == "6.4"
            chart = page.get_by_role(
                "img", name="CQC to LGSCO: working hours to the first attempt to call back"
            )
            await expect(chart).to_be_visible()
            summary = page.get_by_text(
                "Working hours to the first attempt for CQC to LGSCO as a table"
            )
            await summary.click()
            alternative = page.get_by_role(
                "table", name="CQC to LGSCO, working hours to the first attempt, the last 12 months"
            )
            await expect(alternative.get_by_role("row", name="November 2026")).to_contain_text(
                "4.0"
            )
            state = "js on" if javascript else "js off"
            await page.screenshot(
                path=str(artifacts_dir / f"report-callbacks-{state.replace(' ', '-')}.png"),
                full_page=True,
            )
            await assert_accessible(page, f"report with call backs, {state}")
        finally:
            await browser.close()
