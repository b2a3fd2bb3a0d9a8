"""Browser navigation on the pages: going back (or reloading) to an address that a form posted
to is a GET, and it shows the page the form is on, never a JSON "method not allowed"."""

import html
import re

import httpx
from fastapi.routing import APIRoute

from app.web import advisers, auth, callbacks, feedback, reports
from tests.conftest import Key
from tests.helpers import failed_transfer
from tests.test_signposts_feedback import FEEDBACK
from tests.test_web_advisers import dial
from tests.test_web_reports import sign_in


def page_post_paths() -> list[str]:
    """Every address a page form posts to, read from the pages' routers (not listed here)."""
    return sorted(
        route.path
        for router in (
            auth.router,
            advisers.router,
            callbacks.router,
            feedback.router,
            reports.router,
        )
        for route in router.routes
        if isinstance(route, APIRoute) and "POST" in route.methods
    )


async def test_a_get_on_every_form_address_shows_a_page(
    app, client, clock, lgsco_leader: Key, cqc_agent: Key
) -> None:
    callback = await failed_transfer(client, cqc_agent, clock.now())
    await sign_in(client, lgsco_leader)
    started = await dial(client, to_org="cqc", topic="other")
    transfer = started.headers["location"]
    about_cqc = {**FEEDBACK, "about_org": "cqc"}
    made = await client.post("/v1/feedback", json=about_cqc, headers=lgsco_leader.headers)
    values = {
        "{transfer_id}": transfer.rsplit("/", 1)[1],
        "{month}": "2026-10",
        "{callback_id}": callback["callback_request_id"],
        "{feedback_id}": made.json()["id"],
    }
    paths = page_post_paths()
    assert "/transfer/{transfer_id}/callback" in paths and "/reports/{month}/publish" in paths
    for template in paths:
        path = template
        for name, value in values.items():
            path = path.replace(name, value)
        response = await client.get(path, follow_redirects=True)
        assert response.status_code == 200, (path, response.status_code, response.text)
        assert response.headers["content-type"].startswith("text/html"), path
    back = await client.get(f"{transfer}/callback")
    assert back.status_code == 303 and back.headers["location"] == transfer
    publish = await client.get("/reports/2026-10/publish")
    assert publish.headers["location"] == "/reports/2026-10"


async def test_going_back_to_sign_out_does_not_sign_out(client, cqc_agent: Key) -> None:
    await sign_in(client, cqc_agent)
    page = await client.get("/sign-out", follow_redirects=True)
    assert page.status_code == 200 and "Signed in as" in page.text
    assert isinstance(client, httpx.AsyncClient)


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def visible_text(page: httpx.Response) -> str:
    main = re.search(r"<main.*?</main>", page.text, re.S)
    assert main, page.text
    return html.unescape(re.sub(r"<[^>]+>", " ", main.group(0)))


async def test_an_address_that_names_no_page_is_a_page_not_found(client, lgsco_leader: Key) -> None:
    """A browser gets a 404 page in the site's layout, in plain words, for any address outside
    the API that names no page, signed in or not; the API keeps its problem+json."""
    for path in ("/nope", "/transfer/x/y/z", "/static/nope.css"):
        page = await client.get(path, headers=BROWSER)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert "<h1" in page.text and "Page not found" in visible_text(page), path
        assert "not_found" not in page.text and 'href="/static/style.css"' in page.text
    await sign_in(client, lgsco_leader)
    for path in ("/nope", "/transfer/nonexistent", "/reports/2026-13", "/feedback/nonexistent"):
        page = await client.get(path, headers=BROWSER)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert "Page not found" in visible_text(page), path
        assert "Signed in as" in page.text or path == "/nope", path
    for path in ("/v1/nope", "/v1/transfers/nonexistent/x"):
        api = await client.get(path, headers=BROWSER)
        assert api.status_code == 404
        assert api.headers["content-type"] == "application/problem+json"
        assert api.json()["code"] == "not_found"
    # A program that does not ask for HTML keeps the problem+json, outside /v1 too.
    plain = await client.get("/nope", headers={"Accept": "*/*"})
    assert plain.headers["content-type"] == "application/problem+json"


async def test_a_method_an_address_does_not_take_is_a_page_for_a_browser(client) -> None:
    page = await client.delete("/sign-in", headers=BROWSER)
    assert page.status_code == 405 and page.headers["content-type"].startswith("text/html")
    assert page.headers["allow"] == "GET, POST"
    assert "method_not_allowed" not in page.text
    assert "Go back to the page you were on and use its buttons." in visible_text(page)
    api = await client.delete("/v1/signposts", headers=BROWSER)
    assert api.status_code == 405 and api.json()["code"] == "method_not_allowed"
