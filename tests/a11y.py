"""axe-core (the engine shipped in axe-playwright-python's wheel; nothing is fetched) run on a
page in the browser tests: WCAG 2.0, 2.1 and 2.2 A and AA rules and axe's best practices, and
any violation fails the test.

axe runs in a context of its own, on the page as the browser shows it at that moment (its DOM,
with whatever the page's script changed, and the server's stylesheet), with the page's scripts
blocked: with JavaScript off Playwright cannot run axe in the page's own context, and with it on
the tests' paused fake clock would stop axe's own timers.
"""

import json
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page, Route

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
OPTIONS = {"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]}
_AXE = Axe()


def _described(violations: list[dict[str, Any]]) -> str:
    return json.dumps(
        [
            {
                "id": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "nodes": [n["target"] for n in v["nodes"]][:5],
            }
            for v in violations
        ],
        indent=1,
    )


async def _violations(page: Page) -> list[dict[str, Any]]:
    results = await _AXE.run(page, options=OPTIONS)
    return list(results.response["violations"])


async def assert_accessible(page: Page, state: str) -> None:
    """Fail with axe's findings if the page, in `state`, breaks any rule of TAGS."""
    violations = await _as_shown(page)
    assert not violations, f"{state}: {_described(violations)}"


async def _as_shown(page: Page) -> list[dict[str, Any]]:
    html, url = await page.content(), page.url
    browser = page.context.browser
    assert browser is not None
    context = await browser.new_context(locale="en-GB", timezone_id="Europe/London")
    try:
        copy = await context.new_page()
        await copy.set_viewport_size(page.viewport_size or {"width": 1280, "height": 720})

        async def serve(route: Route) -> None:
            request = route.request
            if request.resource_type == "document" and request.url == url:
                await route.fulfill(body=html, content_type="text/html; charset=utf-8")
            elif request.resource_type == "script":
                await route.abort()
            else:
                await route.continue_()

        await copy.route("**/*", serve)
        await copy.goto(url)
        return await _violations(copy)
    finally:
        await context.close()
