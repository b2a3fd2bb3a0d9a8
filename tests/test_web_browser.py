"""A team leader in a real browser (Debian's chromium driven by Playwright): signs in, opens a
month recorded through the API, checks the figures against the API, downloads the CSV,
publishes, and a screenshot is kept."""

import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from app.core.clock import FixedClock
from app.reports.schemas import MEASURES
from tests.a11y import assert_accessible
from tests.conftest import Key
from tests.events import Contacts


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


@pytest.fixture
async def api(live_server: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_server, timeout=30) as client:
        yield client


async def test_team_leader_reads_downloads_and_publishes_in_a_browser(
    chromium: str,
    live_server: str,
    api: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    lgsco_leader: Key,
    artifacts_dir: Path,
    tmp_path: Path,
) -> None:
    from playwright.async_api import async_playwright, expect

    # A month of contacts, recorded through the API as advisers' tools would.
    contacts = Contacts(api, clock)
    await contacts.connected(cqc_agent, "lgsco", at("2026-09-10T10:00:00"))
    for day in (5, 6, 19):
        await contacts.connected(cqc_agent, "lgsco", at(f"2026-10-{day:02d}T09:00:00"))
    await contacts.callback(
        cqc_agent, "lgsco", at("2026-10-07T09:30:00"), "wait_threshold_exceeded"
    )
    await contacts.callback(lgsco_agent, "cqc", at("2026-10-08T11:00:00"), "high_call_volume")
    await contacts.signpost(cqc_agent, "lgsco", at("2026-10-09T12:00:00"))
    for day in (12, 13):
        await contacts.connected(lgsco_agent, "cqc", at(f"2026-10-{day:02d}T10:00:00"))
        await contacts.signpost(lgsco_agent, "cqc", at(f"2026-10-{day:02d}T15:00:00"))
    await contacts.feedback(lgsco_agent, "cqc", at("2026-10-21T14:00:00"))
    clock.set(at("2026-11-05T09:00:00"))

    url = "/v1/reports/contact-volumes/2026-10"
    report = (await api.get(url, headers=lgsco_leader.headers)).json()
    api_csv = (await api.get(f"{url}?format=csv", headers=lgsco_leader.headers)).content

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium)
        try:
            context = await browser.new_context(accept_downloads=True, locale="en-GB")
            page = await context.new_page()

            # Sign in: the report list is behind the sign-in page.
            await page.goto(f"{live_server}/reports")
            await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            await page.get_by_label("Your key").fill(lgsco_leader.secret)
            await page.get_by_role("button", name="Sign in").click()
            await expect(
                page.get_by_role("heading", name="Monthly contact-volume reports")
            ).to_be_visible()
            cookie = next(c for c in await context.cookies() if c["name"] == "handoff_session")
            assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
            await page.screenshot(path=str(artifacts_dir / "reports-list.png"), full_page=True)
            await assert_accessible(page, "reports list")
            october = page.get_by_role("row", name=re.compile(r"^October 2026"))
            await expect(october.get_by_text("Due", exact=True)).to_be_visible()
            await expect(october).to_contain_text("Friday 13 November 2026")

            # The month's page shows the API's figures.
            await october.get_by_role("link", name="October 2026").click()
            await expect(page.get_by_role("heading", name="October 2026", level=1)).to_be_visible()
            await assert_accessible(page, "report before publishing")
            sets = [(d["label"], d) for d in report["directions"]]
            sets.append(("All directions", report["totals"]))
            for caption, figures in sets:
                table = page.get_by_role("table", name=caption, exact=True)
                for measure, _label in MEASURES:
                    cells = table.locator(f'tr[data-measure="{measure}"] td')
                    # The number, before a link's words for screen readers.
                    texts = (await cells.all_inner_texts())[:2]
                    shown = [int(text.split("\n", 1)[0]) for text in texts]
                    expected = [figures["this_month"][measure], figures["previous_month"][measure]]
                    assert shown == expected, (caption, measure)
            await expect(page.locator("svg.chart")).to_have_count(len(report["directions"]))
            await expect(page.get_by_text("Refresh the team on the fees route")).to_be_visible()

            # The CSV download is the API's CSV.
            async with page.expect_download() as download_info:
                await page.get_by_role("link", name="CSV").click()
            download = await download_info.value
            assert download.suggested_filename == "contact-volumes-2026-10.csv"
            saved = tmp_path / download.suggested_filename
            await download.save_as(saved)
            assert saved.read_bytes() == api_csv

            # Publish with the note on fluctuations.
            await page.get_by_label("LGSCO's reasons for fluctuations").fill(
                "More warm transfers to LGSCO after the new fees guidance went out."
            )
            await page.get_by_role("button", name="Sign the report for LGSCO").click()
            await expect(
                page.get_by_role(
                    "heading", name="You signed version 1 of the October 2026 report for LGSCO"
                )
            ).to_be_visible()
            await expect(page.locator("#status")).to_contain_text("Awaiting CQC")
            await expect(page.locator("#fluctuation-note-lgsco")).to_contain_text(
                "new fees guidance"
            )

            await page.screenshot(path=str(artifacts_dir / "report-2026-10.png"), full_page=True)
            await assert_accessible(page, "report after publishing")
            await page.set_viewport_size({"width": 375, "height": 800})
            # Readable on a phone: wide tables scroll inside their own box, the page does not.
            assert await page.evaluate("document.documentElement.scrollWidth") <= 375
            await page.screenshot(
                path=str(artifacts_dir / "report-2026-10-phone.png"), full_page=True
            )
            await assert_accessible(page, "report on a phone")
        finally:
            await browser.close()

    published = (await api.get(url, headers=lgsco_leader.headers)).json()
    assert published["status"] == "awaiting_signature"
    assert published["awaiting_bodies"] == ["cqc"]
    assert published["publication"]["published_by"]["org"] == "lgsco"
    assert published["directions"] == report["directions"]


def test_chromium_is_debians(chromium: str) -> None:
    assert shutil.which("chromium") == chromium or Path(chromium).exists()
