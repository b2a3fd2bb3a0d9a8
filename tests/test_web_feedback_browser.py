"""The feedback pages of issue 17 in a real browser (Debian's chromium through Playwright),
with JavaScript and without it, by keyboard: an LGSCO adviser finds a CQC feedback under
"Feedback about us", acknowledges it, sends an empty answer (both problems at once), then the
answer; the CQC adviser's page of the feedback shows it. axe checks every state."""

from pathlib import Path

import httpx
from playwright.async_api import Page, expect

from tests.conftest import Key
from tests.test_signposts_feedback import FEEDBACK
from tests.test_web_advisers_browser import (  # noqa: F401 (fixtures)
    browser,
    javascript,
    page,
    pytestmark,
    shot,
    sign_in,
)


async def _feedback(base_url: str, key: Key) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        made = await client.post("/v1/feedback", json=FEEDBACK, headers=key.headers)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


# `page` and `javascript` are the fixtures imported above.
async def test_lgsco_answers_a_cqc_feedback_by_keyboard(
    page: Page,  # noqa: F811
    javascript: bool,  # noqa: F811
    live_server: str,
    cqc_agent: Key,
    lgsco_agent: Key,
    artifacts_dir: Path,
) -> None:
    feedback_id = await _feedback(live_server, cqc_agent)
    await sign_in(page, live_server, lgsco_agent)
    nav = page.get_by_role("navigation", name="Sections")
    await nav.get_by_role("link", name="Feedback about us").click()
    await expect(page.get_by_role("heading", name="Feedback about us")).to_be_visible()
    await expect(page.locator("#incoming-feedback")).to_contain_text("New")
    await shot(page, artifacts_dir, "feedback-incoming", javascript)

    await page.locator(f'a[href="/feedback/{feedback_id}"]').focus()
    await page.keyboard.press("Enter")
    await expect(
        page.get_by_role("heading", name="Feedback from the Care Quality Commission")
    ).to_be_visible()
    await page.get_by_role("button", name="Acknowledge").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Acknowledged", exact=True)).to_be_visible()
    await expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    await shot(page, artifacts_dir, "feedback-acknowledged", javascript)

    await page.get_by_role("button", name="Send the answer").focus()
    await page.keyboard.press("Enter")
    summary = page.get_by_role("alert")
    await expect(summary).to_contain_text("Enter the remedial action taken")
    await expect(summary).to_contain_text("Select whether it was a training issue")
    await shot(page, artifacts_dir, "feedback-answer-errors", javascript)

    # The summary's link takes the keyboard to the field.
    await summary.get_by_role("link", name="Enter the remedial action taken").click()
    await expect(page.get_by_label("Remedial action taken")).to_be_focused()
    await page.keyboard.type("Briefed the team on the fees route")
    await page.get_by_role("radio", name="Yes").check()
    await page.get_by_role("button", name="Send the answer").click()
    await expect(page.locator("#answer")).to_contain_text("Briefed the team on the fees route")
    await expect(page.get_by_role("button", name="Send the answer")).to_have_count(0)
    await shot(page, artifacts_dir, "feedback-answered", javascript)

    await page.context.clear_cookies()
    await sign_in(page, live_server, cqc_agent, f"/feedback/{feedback_id}")
    answer = page.locator("#answer")
    await expect(answer).to_contain_text("Briefed the team on the fees route")
    await expect(answer).to_contain_text("Yes")
    await shot(page, artifacts_dir, "feedback-sender-sees-answer", javascript)
