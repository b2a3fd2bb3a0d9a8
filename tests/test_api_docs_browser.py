"""The interactive API documentation in a real browser with no internet: Debian's chromium
(through Playwright) may reach only the server under test; every other request is refused
and recorded, as on a machine without internet access. Swagger UI at /docs and ReDoc at
/redoc must still render the API from the server's own files."""

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from tests.conftest import CHROMIUM_ARGS

# Swagger UI and ReDoc each parse about a megabyte of script and then the whole API document:
# on a busy 2-core machine that takes seconds, so the page gets longer than expect's 5 s.
RENDERED = 30_000  # ms

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


@dataclass
class Offline:
    """Aborts every request that leaves the machine; `refused` lists what was tried."""

    refused: list[str] = field(default_factory=list)

    async def handle(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            self.refused.append(url)
            await route.abort("internetdisconnected")


@pytest.fixture
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


@pytest.fixture
async def offline_page(browser: Browser) -> AsyncIterator[tuple[Page, Offline]]:
    context = await browser.new_context(locale="en-GB")
    offline = Offline()
    await context.route("**/*", offline.handle)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page, offline
    await context.close()
    assert errors == [], f"script errors on the page: {errors}"


async def test_swagger_ui_at_docs_works_without_internet(
    offline_page: tuple[Page, Offline], live_server: str, artifacts_dir: Path
) -> None:
    page, offline = offline_page

    await page.goto(f"{live_server}/docs")
    await expect(page.get_by_role("heading", name="handoff")).to_be_visible(timeout=RENDERED)

    # Expand one operation and read its request body's schema.
    operation = page.locator("#operations-transfers-start_transfer")
    await operation.get_by_role("button", name="POST /v1/transfers").first.click()
    await operation.get_by_role("tab", name="Schema").first.click()
    schema = operation.get_by_role("tabpanel").first
    await expect(schema).to_contain_text("TransferCreate", timeout=RENDERED)
    for name in ("to_org", "sender_reference", "permission_to_share_at", "[1, 32] characters"):
        await expect(schema).to_contain_text(name, timeout=RENDERED)
    await page.screenshot(path=str(artifacts_dir / "api-docs-swagger.png"), full_page=False)

    assert offline.refused == []


async def test_redoc_at_redoc_works_without_internet(
    offline_page: tuple[Page, Offline], live_server: str, artifacts_dir: Path
) -> None:
    page, offline = offline_page

    await page.goto(f"{live_server}/redoc")
    await expect(page.get_by_role("heading", name="handoff", exact=False).first).to_be_visible(
        timeout=RENDERED
    )
    await expect(page.locator(".api-content")).to_contain_text(
        "permission_to_share_at", timeout=RENDERED
    )
    await page.screenshot(path=str(artifacts_dir / "api-docs-redoc.png"), full_page=False)

    # ReDoc's only outside request is the little Redocly logo in its menu, which removes
    # itself when it cannot load (so the page shows no broken image).
    await expect(page.get_by_alt_text("redocly logo")).to_have_count(0, timeout=RENDERED)
    assert [url for url in offline.refused if not url.endswith("/redoc/logo-mini.svg")] == []
