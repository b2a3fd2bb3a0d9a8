"""A relationship owner in a real browser (Debian's chromium driven by Playwright), with and
without JavaScript: signs in and lands on "Complete reports", opens a complete version and reads
the API's figures, both bodies' reasons and the feedback's answer, finds nothing to sign or
download, and meets a version not yet complete as a 404 page; every page axe-clean."""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from app.core.clock import FixedClock
from app.reports.schemas import MEASURES
from tests.a11y import assert_accessible
from tests.conftest import Key, Keys
from tests.test_web_complete_reports import ANSWER, NOTES, OCT, record_and_sign


@pytest.fixture
async def api(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


@pytest.mark.parametrize("javascript", [True, False], ids=["js-on", "js-off"])
async def test_a_relationship_owner_reads_a_complete_report_in_a_browser(
    chromium: str,
    live_server: str,
    api: httpx.AsyncClient,
    clock: FixedClock,
    key_factory: Keys,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
    artifacts_dir: Path,
    javascript: bool,
) -> None:
    from playwright.async_api import async_playwright, expect

    await record_and_sign(api, clock, cqc_agent, lgsco_agent, cqc_leader, lgsco_leader)
    owner = await key_factory.make("lgsco", "relationship_owner", "LGSCO relationship owner")
    version = await api.get(f"/v1/reports/contact-volumes/{OCT}/versions/2", headers=owner.headers)
    assert version.status_code == 200, version.text
    report = version.json()
    state = "js-on" if javascript else "js-off"

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium)
        try:
            context = await browser.new_context(locale="en-GB", java_script_enabled=javascript)
            page = await context.new_page()

            # Signing in lands on the complete reports, the only section there is.
            await page.goto(f"{live_server}/")
            await page.get_by_label("Your key").fill(owner.secret)
            await page.get_by_role("button", name="Sign in").click()
            await expect(
                page.get_by_role("heading", name="Complete reports", level=1)
            ).to_be_visible()
            sections = page.get_by_role("navigation", name="Sections").get_by_role("link")
            await expect(sections).to_have_text(["Complete reports"])
            table = page.get_by_role("table", name="3 complete versions, newest first")
            await expect(table.get_by_role("row")).to_have_count(4)  # the heading row and three
            newest = table.get_by_role("row").nth(1)
            await expect(newest).to_contain_text("6 November 2026 at 10:00")
            await expect(newest).to_contain_text("On time")
            await expect(table.get_by_role("row").nth(3)).to_contain_text("Late")
            await page.screenshot(
                path=str(artifacts_dir / f"complete-reports-{state}.png"), full_page=True
            )
            await assert_accessible(page, f"complete reports, {state}")

            # The newest version: the figures it froze, both bodies' reasons, the feedback.
            await newest.get_by_role(
                "link", name=re.compile(r"^October 2026\s*, version 2$")
            ).click()
            await expect(page.get_by_role("heading", name="October 2026", level=1)).to_be_visible()
            await expect(page.locator("#status")).to_contain_text("Complete")
            sets = [(d["label"], d) for d in report["directions"]]
            sets.append(("All directions", report["totals"]))
            for caption, figures in sets:
                figure_table = page.get_by_role("table", name=caption, exact=True)
                for measure, _label in MEASURES:
                    cells = figure_table.locator(f'tr[data-measure="{measure}"] td')
                    shown = [int(text) for text in (await cells.all_inner_texts())[:2]]
                    expected = [figures["this_month"][measure], figures["previous_month"][measure]]
                    assert shown == expected, (caption, measure)
            for org, note in NOTES.items():
                await expect(page.locator(f"#fluctuation-note-{org}")).to_have_text(note)
            await expect(page.get_by_text(ANSWER["remedial_action"])).to_be_visible()
            # Read-only: nothing to sign, download, or follow to the records behind a figure.
            await expect(
                page.get_by_role("button", name="Sign the report for LGSCO")
            ).to_have_count(0)
            await expect(page.get_by_role("link", name="CSV")).to_have_count(0)
            await expect(page.locator('a[href*="/records"]')).to_have_count(0)
            await expect(page.locator("svg.chart")).to_have_count(0)  # no live trend
            await page.screenshot(
                path=str(artifacts_dir / f"complete-report-{OCT}-{state}.png"), full_page=True
            )
            await assert_accessible(page, f"complete version, {state}")
            await page.set_viewport_size({"width": 375, "height": 800})
            # Readable on a phone: wide tables scroll inside their own box, the page does not.
            assert await page.evaluate("document.documentElement.scrollWidth") <= 375
            await assert_accessible(page, f"complete version on a phone, {state}")
            await page.set_viewport_size({"width": 1280, "height": 720})

            # The other complete version, then a version only CQC has signed: not found.
            await page.get_by_role("link", name="Version 1 of the October 2026 report").click()
            await expect(page.locator("#replaced")).to_contain_text("Version 2 replaced")
            response = await page.goto(f"{live_server}/complete-reports/{OCT}/versions/3")
            assert response is not None and response.status == 404
            await expect(
                page.get_by_role("heading", name="This report is not complete")
            ).to_be_visible()
            await assert_accessible(page, f"a version not complete, {state}")
            await page.get_by_role("link", name="See the complete reports").click()
            await expect(
                page.get_by_role("heading", name="Complete reports", level=1)
            ).to_be_visible()

            # Any other page is refused.
            response = await page.goto(f"{live_server}/reports/{OCT}")
            assert response is not None and response.status == 403
            await expect(
                page.get_by_role("heading", name="You cannot see this page")
            ).to_be_visible()
        finally:
            await browser.close()
