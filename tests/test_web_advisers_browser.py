"""Advisers in a real browser (Debian's chromium through Playwright), each story twice: with
JavaScript and without it. The server runs on the test's clock, so "the caller has waited 61
seconds" is the clock moved on, never a wait; with JavaScript, the page's own clock is moved
by Playwright's clock API. Call back emails go to a real SMTP server (aiosmtpd), delivered by
the server's own outbox worker. Screenshots are kept in the artefacts folder.

One browser serves the whole module: it lives in the module's event loop, where the tests run.
"""

import asyncio
import dataclasses
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from app.core.clock import FixedClock
from app.core.settings import Settings
from tests.a11y import assert_accessible
from tests.conftest import CHROMIUM_ARGS, START, Key, require_chromium
from tests.outbox_support import Received, SmtpServer

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = require_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    """The server's own outbox worker sends to the test's SMTP server."""
    return smtp.settings(settings, outbox_worker_enabled=True, outbox_poll_seconds=0.1)


@pytest.fixture(params=[True, False], ids=["javascript", "no-javascript"])
def javascript(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser, javascript: bool) -> AsyncIterator[Page]:
    context = await browser.new_context(
        java_script_enabled=javascript, locale="en-GB", timezone_id="Europe/London"
    )
    new_page = await context.new_page()
    if javascript:
        # The page's clock starts where the server's does and moves only when told to.
        # (Installed a second early: pausing at the very instant installed can be "the past"
        # by the few milliseconds the fake clock ran in between.)
        await new_page.clock.install(time=START - timedelta(seconds=1))
        await new_page.clock.pause_at(START)
    yield new_page
    await context.close()


async def run_page_clock(page: Page, milliseconds: int) -> None:
    """Move the page's fake clock on, once its deferred scripts have run.

    The countdown's first figure is the server's, so seeing it does not mean transfer.js has
    started: moved before the script reads the clock, the page would count from the moved time.
    """
    await page.wait_for_load_state("load")
    await page.clock.run_for(milliseconds)


async def shot(page: Page, artifacts_dir: Path, name: str, javascript: bool) -> None:
    """A screenshot of the page in this state, and axe's check of it (any violation fails)."""
    suffix = "js" if javascript else "nojs"
    await page.screenshot(path=str(artifacts_dir / f"adviser-{name}-{suffix}.png"), full_page=True)
    await assert_accessible(page, f"{name} ({suffix})")


async def sign_in(page: Page, base_url: str, key: Key, path: str = "/") -> None:
    await page.goto(f"{base_url}{path}")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await assert_accessible(page, "sign-in")
    await page.get_by_label("Your key").fill(key.secret)
    await page.get_by_role("button", name="Sign in").click()


async def api_get(base_url: str, key: Key, path: str) -> dict:  # type: ignore[type-arg]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.get(path, headers=key.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def delivered(smtp: SmtpServer, count: int) -> list[Received]:
    """The messages the SMTP server received, once there are `count` (the worker polls)."""
    deadline = time.monotonic() + 30
    # aiosmtpd runs in a thread of its own: nothing to await but the list it fills.
    while len(smtp.received) < count and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    assert len(smtp.received) == count, smtp.received
    return smtp.received


async def test_a_transfer_to_cqc_connects(
    page: Page,
    javascript: bool,
    live_server: str,
    clock: FixedClock,
    lgsco_agent: Key,
    artifacts_dir: Path,
) -> None:
    await sign_in(page, live_server, lgsco_agent)
    # An adviser lands on the transfer assistant and sees only the advisers' sections.
    await expect(page.get_by_role("heading", name="Transfer a caller")).to_be_visible()
    nav = page.get_by_role("navigation", name="Sections")
    await expect(nav.get_by_role("link")).to_have_text(
        ["Transfer a caller", "Misdirection feedback", "Call backs for us", "Feedback about us"]
    )
    cookie = next(c for c in await page.context.cookies() if c["name"] == "handoff_session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"

    await expect(page.locator("#dial")).to_contain_text("Dial 03000 616 161")
    await page.get_by_label("All other complaints").check()
    await page.get_by_label("Your case reference").fill("LG-2002")
    await page.get_by_role("button", name="Permission given now").click()
    await expect(page.locator("#permission-stamp")).to_have_text("Permission recorded at 10:00:00")
    await expect(page.get_by_label("Your case reference")).to_have_value("LG-2002")
    await expect(page.get_by_label("All other complaints")).to_be_checked()
    await shot(page, artifacts_dir, "transfer-start", javascript)

    clock.advance(5)
    await page.get_by_role("button", name="Dialling now").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        "Dial 03000 616 161, then press 2"
    )
    await expect(page.locator("#countdown-seconds")).to_have_text("30")
    if javascript:
        await run_page_clock(page, 12_000)
        await expect(page.locator("#countdown-seconds")).to_have_text("18")
    await shot(page, artifacts_dir, "transfer-waiting", javascript)

    # Answered after 25 seconds; the adviser uses the keyboard only.
    clock.advance(25)
    await page.get_by_role("button", name="Connected", exact=True).focus()
    await page.keyboard.press("Enter")
    recorded = page.get_by_role("heading", name="Warm transfer recorded")
    await expect(recorded).to_be_visible()
    await expect(recorded).to_be_focused()
    await expect(page.locator("#outcome")).to_contain_text("after 25 seconds")
    await shot(page, artifacts_dir, "transfer-connected", javascript)

    transfer_id = page.url.rsplit("/", 1)[1]
    transfer = await api_get(live_server, lgsco_agent, f"/v1/transfers/{transfer_id}")
    assert transfer["status"] == "connected"
    assert (transfer["topic"], transfer["dial"]["ivr_option"]) == ("other", 2)
    assert transfer["sender_reference"] == "LG-2002"
    assert transfer["permission_to_share_at"] == "2026-11-10T10:00:00Z"

    # Signposted instead: one click from the same form.
    await page.get_by_role("link", name="Transfer another caller").first.click()
    await page.get_by_role("button", name="Signposted instead").click()
    await expect(page.get_by_role("heading", name="Signpost to CQC recorded")).to_be_visible()
    await shot(page, artifacts_dir, "signpost-recorded", javascript)


async def test_a_wait_past_60_seconds_turns_into_a_call_back_request(
    page: Page,
    javascript: bool,
    live_server: str,
    clock: FixedClock,
    cqc_agent: Key,
    cqc_leader: Key,
    smtp: SmtpServer,
    artifacts_dir: Path,
) -> None:
    await sign_in(page, live_server, cqc_agent, "/transfer")
    await expect(page.locator("#dial")).to_contain_text("Dial 0300 061 0614")
    await page.get_by_label("Your case reference").fill("CQC-1001")
    await page.get_by_label("Or the time it was given today").fill("09:58")
    await page.get_by_label("Your case reference").press("Enter")  # Enter means "Dialling now"
    await expect(page.locator("#countdown-seconds")).to_have_text("60")
    await expect(page.get_by_role("heading", name="Request a call back")).to_be_hidden()

    clock.advance(61)  # the server's clock: the caller has now waited 61 seconds
    if javascript:
        await run_page_clock(page, 60_000)  # exactly 60 s: still waiting, as the service rules
        await expect(page.locator("#countdown-seconds")).to_have_text("0")
        await expect(page.get_by_role("button", name="Connected", exact=True)).to_be_visible()
        await run_page_clock(page, 1_000)
    else:
        await page.reload()  # what the page's <noscript> refresh does at the deadline
    alert = page.get_by_role("alert")
    await expect(alert).to_have_text(
        "The caller has waited more than 60 seconds. Request a call back."
    )
    await expect(page.get_by_role("button", name="Connected", exact=True)).to_be_hidden()
    # If they answer now it is still a warm transfer: the button is kept beside the form.
    await expect(page.get_by_role("button", name="They answered: connected")).to_be_visible()
    heading = page.get_by_role("heading", name="Request a call back")
    await expect(heading).to_be_visible()
    await expect(heading).to_be_focused()  # moved by the script, or autofocus on the reload
    await shot(page, artifacts_dir, "callback-form", javascript)

    # A wrong number: a plain sentence next to the field (the code only in an attribute),
    # focus on the error summary, whose link moves it to the field; the other values kept.
    await page.get_by_label("Caller's name").fill("Ada Lovelace")
    await page.get_by_label("Contact number").fill("07911 654321")
    await page.get_by_label("Service provider").fill("Sunrise Care Home")
    await page.get_by_role("button", name="Send call back request").click()
    error = page.locator("#caller-contact_number-error")
    await expect(error).to_have_text(
        "Error: 07911 654321 is not a number in use in the UK. Check it with the caller"
    )
    await expect(error).to_have_attribute("data-code", "invalid_phone_number")
    await expect(page.locator(".error-summary")).to_be_focused()
    await page.get_by_role("link", name="07911 654321 is not a number in use").click()
    await expect(page.get_by_label("Contact number")).to_be_focused()
    await expect(page.get_by_label("Contact number")).to_have_attribute(
        "aria-describedby", re.compile("caller-contact_number-error")
    )
    await expect(page.get_by_label("Caller's name")).to_have_value("Ada Lovelace")
    await expect(page.get_by_label("Service provider")).to_have_value("Sunrise Care Home")
    await expect(page.get_by_label("Contact number")).to_have_value("07911 654321")
    await shot(page, artifacts_dir, "callback-error", javascript)
    # A reload of the refused form does not send it again, with or without script: the refused
    # POST was answered by a redirect (POST/redirect/GET), so the page is the transfer's, a GET.
    # What was typed was shown once and is no longer kept, so the form comes back empty.
    assert re.search(r"/transfer/[0-9a-f-]{36}(#[\w-]+)?$", page.url), page.url
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    await page.reload()
    await expect(page.get_by_role("heading", name="Request a call back")).to_be_visible()
    assert posts == [] and re.search(r"/transfer/[0-9a-f-]{36}(#[\w-]+)?$", page.url), (
        posts,
        page.url,
    )
    await expect(page.get_by_label("Caller's name")).to_have_value("")
    await shot(page, artifacts_dir, "callback-error-reloaded", javascript)
    await page.get_by_label("Caller's name").fill("Ada Lovelace")
    await page.get_by_label("Service provider").fill("Sunrise Care Home")

    await page.get_by_label("Contact number").fill("07911 123456")
    await page.get_by_label("Contact number").press("Enter")
    made = page.get_by_role("heading", name="Call back request made")
    await expect(made).to_be_visible()
    await expect(made).to_be_focused()
    await expect(page.locator("#outcome")).to_contain_text("intake@lgo.org.uk")

    # The server's outbox worker delivers it; the page shows the delivery when checked again.
    (message,) = await delivered(smtp, 1)
    assert message.rcpt_tos == ["intake@lgo.org.uk"]
    text = message.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "CQC Reference: CQC-1001" in text and "Ada Lovelace" in text
    assert "Sunrise Care Home" in text
    await page.get_by_role("link", name="Check the email and the call back again").click()
    await expect(page.locator("#delivery-status")).to_have_text(re.compile(r"^Sent at 10:01:01"))
    await shot(page, artifacts_dir, "callback-sent", javascript)

    transfer = await api_get(live_server, cqc_agent, f"/v1/transfers/{page.url.rsplit('/', 1)[1]}")
    assert transfer["failure_reason"] == "wait_threshold_exceeded"
    # One call back request, for all the submits and reloads: nothing sent twice.
    listed = await api_get(live_server, cqc_leader, "/v1/callbacks")
    assert len(listed["items"]) == 1, listed


async def test_feedback_on_a_misdirected_call(
    page: Page,
    javascript: bool,
    live_server: str,
    cqc_agent: Key,
    cqc_leader: Key,
    smtp: SmtpServer,
    artifacts_dir: Path,
) -> None:
    await sign_in(page, live_server, cqc_agent)
    await page.get_by_role("link", name="Misdirection feedback").click()
    await expect(page.get_by_role("heading", name="Feedback on a misdirected call")).to_be_visible()
    await page.get_by_label("Case references").fill("CQC-1001, LG 2002!")
    await page.get_by_label("Reason for contacting").fill("Complaint about a council's care fees")
    await page.get_by_label("Names and times").fill("Adviser J, 10:15")
    await page.get_by_label("Correct advice").fill("Fees complaints go to the Ombudsman")
    await page.get_by_role("button", name="Send feedback").click()
    await expect(page.locator(".error-summary")).to_be_focused()
    await expect(page.locator("#case_references-error")).to_have_attribute(
        "data-code", "invalid_reference"
    )
    await expect(page.locator("#suggested_action-error")).to_contain_text(
        "Enter a suggested course of action"
    )
    await expect(page.get_by_label("Reason for contacting")).to_have_value(
        "Complaint about a council's care fees"
    )
    await shot(page, artifacts_dir, "feedback-error", javascript)
    # A reload after the refused submit sends nothing: the form's page again, as a GET.
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    await page.reload()
    await expect(page.get_by_role("heading", name="Feedback on a misdirected call")).to_be_visible()
    assert posts == [] and page.url.endswith("/feedback/new"), (posts, page.url)
    await page.get_by_label("Case references").fill("CQC-1001, LG 2002!")
    await page.get_by_label("Reason for contacting").fill("Complaint about a council's care fees")
    await page.get_by_label("Names and times").fill("Adviser J, 10:15")
    await page.get_by_label("Correct advice").fill("Fees complaints go to the Ombudsman")

    await page.get_by_label("Case references").fill("CQC-1001, LG-2002")
    await page.get_by_label("Suggested course of action").fill("Refresh the team on the fees route")
    await page.get_by_label("When it happened").fill("2026-11-09T10:15")
    await page.get_by_role("button", name="Send feedback").click()
    await expect(
        page.get_by_role(
            "heading", name="Feedback recorded: the email goes to intakemanagers@lgo.org.uk"
        )
    ).to_be_visible()
    feedback_id = await page.locator("#feedback-id").inner_text()
    await shot(page, artifacts_dir, "feedback-sent", javascript)

    feedback = await api_get(live_server, cqc_agent, f"/v1/feedback/{feedback_id}")
    assert feedback["case_references"] == ["CQC-1001", "LG-2002"]
    assert feedback["occurred_at"] == "2026-11-09T10:15:00Z"
    (message,) = await delivered(smtp, 1)
    assert message.rcpt_tos == ["intakemanagers@lgo.org.uk"]
    listed = await api_get(live_server, cqc_leader, "/v1/feedback")
    assert [item["id"] for item in listed["items"]] == [feedback_id], listed


async def tab_to(page: Page, css: str, presses: int = 40) -> None:
    """Press Tab until the element matching `css` has the focus."""
    for _ in range(presses):
        if await page.locator(f"{css}:focus").count():
            return
        await page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {css}")


async def test_the_transfer_story_by_keyboard_alone(
    page: Page,
    javascript: bool,
    live_server: str,
    clock: FixedClock,
    cqc_agent: Key,
    smtp: SmtpServer,
    artifacts_dir: Path,
) -> None:
    """Tab, Enter, Space and typing only: sign in, start, wait, fail the form once, follow the
    error summary to the field, send the call back request."""
    await page.goto(f"{live_server}/sign-in")
    await tab_to(page, "#key")
    await page.keyboard.type(cqc_agent.secret)
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Transfer a caller")).to_be_visible()

    await tab_to(page, "#sender_reference")
    await page.keyboard.type("CQC-1001")
    await tab_to(page, "#permission_to_share_at")  # the "Permission given now" button
    await page.keyboard.press("Space")
    await expect(page.locator("#permission-stamp")).to_contain_text("Permission recorded at")
    await tab_to(page, "button[value=dial]:not(.default-action)")
    await page.keyboard.press("Enter")
    await expect(page.locator("#countdown-seconds")).to_have_text("60")

    clock.advance(61)
    if javascript:
        await run_page_clock(page, 61_000)
    else:
        await page.reload()  # the page's own refresh at the deadline
    await expect(page.get_by_role("heading", name="Request a call back")).to_be_focused()
    await tab_to(page, "button[value=send]:not(.default-action)")
    await page.keyboard.press("Enter")
    summary = page.locator(".error-summary")
    await expect(summary).to_be_focused()
    await expect(summary.get_by_role("link")).to_have_text(
        [
            "Enter the caller's name",
            "Enter the caller's contact number",
            "Enter the name of the service provider",
        ]
    )
    await shot(page, artifacts_dir, "keyboard-callback-errors", javascript)
    await page.keyboard.press("Tab")
    await page.keyboard.press("Enter")  # the first link: to the caller's name
    await expect(page.get_by_label("Caller's name")).to_be_focused()
    await page.keyboard.type("Ada Lovelace")
    await page.keyboard.press("Tab")
    await page.keyboard.type("07911 123456")
    await page.keyboard.press("Tab")
    await page.keyboard.type("Sunrise Care Home")
    await page.keyboard.press("Enter")
    made = page.get_by_role("heading", name="Call back request made")
    await expect(made).to_be_focused()
    await shot(page, artifacts_dir, "keyboard-callback-sent", javascript)
    (message,) = await delivered(smtp, 1)
    assert message.rcpt_tos == ["intake@lgo.org.uk"]


async def test_error_pages(
    page: Page, javascript: bool, live_server: str, cqc_agent: Key, artifacts_dir: Path
) -> None:
    """A mistyped address is a page in the site's layout, in plain words, never JSON; so are a
    wrong key at sign-in and a page for team leaders only."""
    response = await page.goto(f"{live_server}/nope")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    await shot(page, artifacts_dir, "page-not-found", javascript)
    await sign_in(page, live_server, dataclasses.replace(cqc_agent, secret="hk_wrong"))
    await expect(page.locator(".error-summary")).to_contain_text("This key is not recognised")
    await shot(page, artifacts_dir, "sign-in-error", javascript)
    await sign_in(page, live_server, cqc_agent)
    await expect(page.get_by_role("heading", name="Transfer a caller")).to_be_visible()
    response = await page.goto(f"{live_server}/reports")
    assert response is not None and response.status == 403
    await expect(page.get_by_text("This page is for team leaders.")).to_be_visible()
    await shot(page, artifacts_dir, "for-team-leaders-only", javascript)
    response = await page.goto(f"{live_server}/transfer/nonexistent")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    await expect(page.get_by_text("Signed in as")).to_be_visible()
    await shot(page, artifacts_dir, "page-not-found-signed-in", javascript)
