"""A team leader reads the month's time to answer and contacts by reason (chart and table),
then follows a figure to its records, in a real browser (Debian's chromium), with and without
JavaScript, axe-clean."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from app.core.clock import FixedClock
from app.core.database import make_engine, make_sessionmaker
from app.core.settings import Settings
from tests.a11y import assert_accessible
from tests.conftest import Key
from tests.test_report_counted import OCT, record_month


@pytest.fixture
async def api(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
async def test_time_to_answer_reasons_and_records_in_a_browser(
    chromium: str,
    live_server: str,
    api: httpx.AsyncClient,
    settings: Settings,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    artifacts_dir: Path,
    javascript: bool,
) -> None:
    from playwright.async_api import async_playwright, expect

    engine = make_engine(settings.database_url)
    worker = SimpleNamespace(
        state=SimpleNamespace(sessionmaker=make_sessionmaker(engine), settings=settings)
    )
    try:
        await record_month(worker, api, clock, cqc_agent, lgsco_agent)
    finally:
        await engine.dispose()
    clock.set(datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
    state = "js-on" if javascript else "js-off"

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium)
        try:
            context = await browser.new_context(locale="en-GB", java_script_enabled=javascript)
            page = await context.new_page()
            await page.goto(f"{live_server}/reports/{OCT}")
            await page.get_by_label("Your key").fill(cqc_leader.secret)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.get_by_role("heading", name="October 2026", level=1)).to_be_visible()

            answer = page.get_by_role("table", name="CQC to LGSCO: time to answer", exact=True)
            p90 = answer.locator('tr[data-measure="answer.answer_seconds_p90"] td')
            assert (await p90.all_inner_texts())[0] == "72.0"
            chart = page.get_by_role("img", name="CQC to LGSCO: contacts by reason")
            await expect(chart).to_be_visible()
            await page.get_by_text("Contacts by reason for CQC to LGSCO as a table").click()
            reasons = page.get_by_role("table", name="CQC to LGSCO, contacts by reason")
            await expect(reasons.get_by_role("row", name="Delay")).to_contain_text("4")
            await page.screenshot(
                path=str(artifacts_dir / f"report-counted-{state}.png"), full_page=True
            )
            await assert_accessible(page, f"report with time to answer and reasons, {state}")

            # The declined figure of October leads to the one declined transfer.
            figures = page.get_by_role("table", name="CQC to LGSCO", exact=True)
            await figures.locator('tr[data-measure="transfers_declined"] td a').first.click()
            await expect(
                page.get_by_role("heading", name="Transfers the caller declined", level=1)
            ).to_be_visible()
            records = page.get_by_role("table", name="Transfers the caller declined, CQC to LGSCO")
            await expect(records.locator("tbody tr")).to_have_count(1)
            await expect(records).to_contain_text("The caller did not want to be transferred")
            await assert_accessible(page, f"records behind a figure, {state}")
        finally:
            await browser.close()
