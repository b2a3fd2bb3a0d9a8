"""A call back's life in a real browser (Debian's chromium through Playwright), with and without
JavaScript, axe-core on every state: an LGSCO adviser acknowledges CQC's request, records no
answer, then reached, by keyboard alone; the CQC adviser's page shows each step; a request left
untouched shows as overdue once the server's (injected) clock passes its due time, no sleeps.
"""

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from app.core.clock import FixedClock
from tests.conftest import Key
from tests.helpers import failed_transfer
from tests.test_web_advisers_browser import browser, javascript, page, shot, sign_in, tab_to

__all__ = ["browser", "javascript", "page"]  # the module's browser and pages, shared

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def cqc_request(base_url: str, cqc: Key, clock: FixedClock) -> dict:  # type: ignore[type-arg]
    """A CQC adviser's transfer to LGSCO failed on busy lines (through the API)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await failed_transfer(client, cqc, clock.now())


async def test_lgsco_closes_a_cqc_call_back_and_cqc_sees_each_step(
    browser: Browser,
    page: Page,
    javascript: bool,
    live_server: str,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    artifacts_dir: Path,
) -> None:
    transfer = await cqc_request(live_server, cqc_agent, clock)
    # The CQC adviser's confirmation page, in a browser of its own, reloaded after each step.
    cqc_context = await browser.new_context(
        java_script_enabled=javascript, locale="en-GB", timezone_id="Europe/London"
    )
    cqc = await cqc_context.new_page()
    await sign_in(cqc, live_server, cqc_agent, f"/transfer/{transfer['id']}")
    await expect(cqc.get_by_role("heading", name="Call back request made")).to_be_visible()
    cqc_acknowledged = cqc.locator("#callback-state-acknowledged")
    cqc_attempts = cqc.locator("#callback-state-attempts")
    await expect(cqc_acknowledged).to_have_text("Not acknowledged by LGSCO yet")
    await expect(cqc_attempts).to_have_text("No attempts to call yet")
    await shot(cqc, artifacts_dir, "callback-waiting-seen-by-cqc", javascript)

    await sign_in(page, live_server, lgsco_agent)
    await (
        page.get_by_role("navigation", name="Sections")
        .get_by_role("link", name="Call backs for us")
        .click()
    )
    await expect(page.get_by_role("heading", level=1)).to_have_text("Call backs for us")
    row = page.locator("#callbacks tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("CQC-1001")
    await expect(row).to_contain_text("New")
    await shot(page, artifacts_dir, "callbacks-for-us", javascript)
    await page.get_by_role("link", name="CQC-1001").click()

    heading = page.get_by_role("heading", level=1)
    await expect(heading).to_have_text("Call Ada Lovelace")
    await expect(page.get_by_role("link", name="07911 123456")).to_have_attribute(
        "href", "tel:+447911123456"
    )
    await shot(page, artifacts_dir, "callback-new", javascript)

    # By keyboard alone: Tab to each button and press Enter.
    clock.advance(42 * 60)
    await tab_to(page, "#acknowledge")
    await page.keyboard.press("Enter")
    banner = page.get_by_role("status")
    await expect(banner).to_have_text(
        "Acknowledged at 10:42: your team has taken this call back on"
    )
    await expect(heading).to_be_focused()  # the page's heading, after the redirect
    await expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    await shot(page, artifacts_dir, "callback-acknowledged", javascript)
    await cqc.reload()
    await expect(cqc_acknowledged).to_have_text("Acknowledged by LGSCO at 10:42")

    clock.advance(3 * 60)
    await tab_to(page, "button[value=no_answer]")
    await page.keyboard.press("Enter")
    await expect(banner).to_have_text("No answer recorded at 10:45")
    await expect(page.locator("#callback-state-attempts")).to_have_text(
        "1 attempt: no answer 10:45"
    )
    await expect(page.locator("#attempts tbody tr")).to_have_count(1)
    await shot(page, artifacts_dir, "callback-no-answer", javascript)
    await cqc.reload()
    await expect(cqc_attempts).to_have_text("1 attempt: no answer 10:45")

    clock.advance(3 * 60 * 60 + 25 * 60)
    await tab_to(page, "button[value=reached]")
    await page.keyboard.press("Enter")
    await expect(banner).to_have_text("Reached recorded at 14:10: the call back is closed")
    await expect(page.locator("#callback-state-outcome")).to_contain_text(
        "the caller was called back and spoken to"
    )
    await expect(page.locator("main button")).to_have_count(0)  # closed: no buttons
    await shot(page, artifacts_dir, "callback-closed", javascript)

    await cqc.reload()
    await expect(cqc_attempts).to_have_text("2 attempts: no answer 10:45, reached 14:10")
    await expect(cqc.locator("#callback-state-outcome")).to_have_text(
        "Closed at 14:10: the caller was called back and spoken to"
    )
    await shot(cqc, artifacts_dir, "callback-closed-seen-by-cqc", javascript)
    # The sending body's page of the request: where it stands, no caller details, no buttons.
    await cqc.get_by_role("link", name="Open the call back request").click()
    await expect(cqc.get_by_role("heading", level=1)).to_have_text(
        "Your call back request CQC-1001"
    )
    await expect(cqc.locator("main button")).to_have_count(0)
    await shot(cqc, artifacts_dir, "callback-request-seen-by-cqc", javascript)
    await cqc_context.close()


async def test_an_untouched_request_turns_overdue_and_a_return_needs_a_reason(
    page: Page,
    javascript: bool,
    live_server: str,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    artifacts_dir: Path,
) -> None:
    await cqc_request(live_server, cqc_agent, clock)
    await sign_in(page, live_server, lgsco_agent, "/callbacks")
    row = page.locator("#callbacks tbody tr")
    await expect(row).not_to_contain_text("Overdue")

    clock.advance(4 * 60 * 60 + 1)  # past 14:00, its first call's due time
    await page.reload()
    await expect(row).to_contain_text("Overdue")
    await shot(page, artifacts_dir, "callbacks-overdue", javascript)
    await page.get_by_label("Show").select_option("overdue")
    await page.get_by_role("button", name="Show").click()
    await expect(row).to_have_count(1)
    await page.get_by_role("link", name="CQC-1001").click()
    await expect(page.locator("#callback-state")).to_contain_text("Overdue")

    await page.get_by_role("button", name="Return").click()
    error = page.locator("#reason-error")
    await expect(error).to_have_text("Error: Select why this call back is not for your team")
    await expect(error).to_have_attribute("data-code", "return_reason_required")
    await expect(page.locator(".error-summary")).to_be_focused()
    await shot(page, artifacts_dir, "callback-return-error", javascript)
    await page.get_by_label("Duplicate").check()
    await page.get_by_role("button", name="Return").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Returned to CQC (duplicate): the call back is closed"
    )
    await shot(page, artifacts_dir, "callback-returned", javascript)
