"""Browser navigation on the pages: going back (or reloading) to an address that a form posted
to is a GET, and it shows the page the form is on, never a JSON "method not allowed"."""

import httpx
from fastapi.routing import APIRoute

from app.web import advisers, auth, reports
from tests.conftest import Key
from tests.test_web_advisers import dial
from tests.test_web_reports import sign_in


def page_post_paths() -> list[str]:
    """Every address a page form posts to, read from the pages' routers (not listed here)."""
    return sorted(
        route.path
        for router in (auth.router, advisers.router, reports.router)
        for route in router.routes
        if isinstance(route, APIRoute) and "POST" in route.methods
    )


async def test_a_get_on_every_form_address_shows_a_page(app, client, lgsco_leader: Key) -> None:
    await sign_in(client, lgsco_leader)
    started = await dial(client, to_org="cqc", topic="other")
    transfer = started.headers["location"]
    values = {"{transfer_id}": transfer.rsplit("/", 1)[1], "{month}": "2026-10"}
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
