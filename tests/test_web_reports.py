"""Team leaders' report pages without a browser: sign-in, CSRF, roles, errors, publishing."""

import re
from datetime import UTC, datetime

import httpx
import pytest

from app.audit.service import CLI
from app.core.clock import FixedClock
from app.core.database import make_sessionmaker
from app.keys import service as keys
from app.web.sessions import COOKIE
from tests.conftest import Key
from tests.events import Contacts

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


def csrf(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, key: Key, next_: str = "") -> httpx.Response:
    form = await client.get("/sign-in")
    return await client.post(
        "/sign-in", data={"key": key.secret, "csrf_token": csrf(form), "next": next_}
    )


async def test_a_team_leader_signs_in_and_gets_a_strict_httponly_cookie(
    client, cqc_leader: Key
) -> None:
    first = await client.get("/reports")
    assert first.status_code == 303
    assert first.headers["location"] == "/sign-in?next=%2Freports"

    form = await client.get("/sign-in?next=%2Freports%2F2026-10")
    assert form.status_code == 200
    assert '<label class="label" for="key">' in form.text
    assert form.headers["content-security-policy"].startswith("default-src 'none'")
    response = await client.post(
        "/sign-in",
        data={"key": cqc_leader.secret, "csrf_token": csrf(form), "next": "/reports/2026-10"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/reports/2026-10"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # secure_cookies is off for plain-HTTP tests
    assert cqc_leader.secret not in cookie

    page = await client.get("/reports")
    assert page.status_code == 200
    assert "Signed in as <strong>cqc concerns team manager</strong>" in page.text


async def test_cookies_are_secure_when_the_settings_say_so(app, client, cqc_leader: Key) -> None:
    app.state.settings = app.state.settings.model_copy(update={"secure_cookies": True})
    response = await client.get("/sign-in")
    assert "Secure" in response.headers["set-cookie"]


async def test_an_agent_signs_in_but_cannot_open_the_reports(client, cqc_agent: Key) -> None:
    response = await sign_in(client, cqc_agent, "/reports")
    assert response.status_code == 303
    assert (await client.get("/reports")).status_code == 403
    assert (await client.get("/reports/2026-10")).status_code == 403


async def test_an_unknown_key_is_refused_with_the_error_next_to_the_field(client) -> None:
    """A refused sign-in answers 303 to the form (POST/redirect/GET): reloading the page that
    shows the error sends no key again, and the key is in no address."""
    form = await client.get("/sign-in?next=%2Freports")
    refused = await client.post(
        "/sign-in", data={"key": "hk_nope", "csrf_token": csrf(form), "next": "/reports"}
    )
    assert refused.status_code == 303
    location = refused.headers["location"]
    assert location.startswith("/sign-in?") and "hk_nope" not in location
    shown = await client.get(location)
    assert shown.status_code == 200
    assert 'href="#key"' in shown.text and "not recognised" in shown.text
    assert 'name="next" value="/reports"' in shown.text  # still going where it was going
    reloaded = await client.get(location)  # what a reload does: a GET, no key sent
    assert reloaded.text.count("not recognised") == shown.text.count("not recognised")

    empty = await client.post("/sign-in", data={"key": "", "csrf_token": csrf(form)})
    assert empty.status_code == 303
    assert "Enter your key" in (await client.get(empty.headers["location"])).text
    # An address naming no problem (or one made up) shows the plain form.
    plain = await client.get("/sign-in?problem=made-up")
    assert plain.status_code == 200 and "There is a problem" not in plain.text


async def test_every_form_needs_the_csrf_token(client, clock: FixedClock, cqc_leader: Key) -> None:
    await client.get("/sign-in")
    no_token = await client.post("/sign-in", data={"key": cqc_leader.secret})
    assert no_token.status_code == 403 and "Your form has expired" in no_token.text
    assert (await sign_in(client, cqc_leader)).status_code == 303

    clock.set(at("2026-11-02T10:00:00"))
    forged = await client.post(
        "/reports/2026-10/publish", data={"fluctuation_note": "x", "csrf_token": "forged"}
    )
    assert forged.status_code == 403
    signed_out = await client.post("/sign-out", data={})
    assert signed_out.status_code == 403
    page = await client.get("/reports/2026-10")
    assert "Version 1" not in page.text


async def test_sign_in_only_redirects_to_this_site(client, cqc_leader: Key) -> None:
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        client.cookies.clear()
        response = await sign_in(client, cqc_leader, target)
        assert response.headers["location"] == "/reports", target


async def test_a_revoked_key_is_signed_out(app, client, clock: FixedClock, cqc_leader: Key) -> None:
    await sign_in(client, cqc_leader)
    assert (await client.get("/reports")).status_code == 200
    async with make_sessionmaker(app.state.engine)() as session:
        await keys.revoke_key(session, cqc_leader.id, now=clock.now(), actor=CLI)
        await session.commit()
    assert (await client.get("/reports")).status_code == 303


async def test_sign_out_ends_the_session(client, cqc_leader: Key) -> None:
    await sign_in(client, cqc_leader)
    page = await client.get("/reports")
    response = await client.post("/sign-out", data={"csrf_token": csrf(page)})
    assert response.status_code == 303 and response.headers["location"] == "/sign-in"
    assert (await client.get("/reports")).status_code == 303


async def test_a_cookie_saved_before_sign_out_no_longer_works(app, cqc_leader: Key) -> None:
    """Someone copies the signed-in cookie (a shared PC, a stolen backup); the team leader
    signs out; the copy no longer signs anyone in. Another browser of the same key, signed in
    separately, stays signed in."""
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://handoff.test") as browser,
        httpx.AsyncClient(transport=transport, base_url="http://handoff.test") as other,
        httpx.AsyncClient(transport=transport, base_url="http://handoff.test") as thief,
    ):
        await sign_in(browser, cqc_leader)
        await sign_in(other, cqc_leader)
        saved = browser.cookies[COOKIE]
        thief.cookies.set(COOKIE, saved)
        assert (await thief.get("/reports")).status_code == 200

        page = await browser.get("/reports")
        signed_out = await browser.post("/sign-out", data={"csrf_token": csrf(page)})
        assert signed_out.status_code == 303

        replayed = await thief.get("/reports")
        assert replayed.status_code == 303
        assert replayed.headers["location"] == "/sign-in?next=%2Freports"
        assert (await other.get("/reports")).status_code == 200


async def test_a_tampered_cookie_is_ignored(client, cqc_leader: Key) -> None:
    await sign_in(client, cqc_leader)
    value = client.cookies[COOKIE]
    client.cookies.set(COOKIE, value[:-2] + ("AA" if not value.endswith("AA") else "BB"))
    assert (await client.get("/reports")).status_code == 303


async def test_list_shows_due_dates_and_makes_overdue_stand_out(
    client, clock: FixedClock, cqc_agent: Key, cqc_leader: Key
) -> None:
    await Contacts(client, clock).signpost(cqc_agent, "lgsco", at("2026-10-02T10:00:00"))
    clock.set(at("2026-11-20T10:00:00"))
    await sign_in(client, cqc_leader)
    page = await client.get("/reports")
    assert page.status_code == 200
    assert "1 report is overdue" in page.text
    assert "October 2026</a> was due on Friday 13 November 2026" in page.text
    row = re.search(r'<tr class="row--overdue">(.*?)</tr>', page.text, re.S)
    assert row and "October 2026" in row.group(1) and "tag--red" in row.group(1)
    assert "November 2026" in page.text and "tag--grey" in page.text  # open
    assert "September 2026" not in page.text  # before the first record
    go = await client.get("/reports?month=2025-03")
    assert go.status_code == 303 and go.headers["location"] == "/reports/2025-03"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/reports/2026-13", 404),
        ("/reports/not-a-month", 404),
        ("/reports/2026-10?version=0", 400),
        ("/reports/2026-10?version=9", 404),
        ("/reports/2026-10/contact-volumes.csv?version=x", 400),
        ("/reports/2026-10/contact-volumes.pdf", 404),  # names no page
        ("/reports?month=2026-1", 404),
    ],
)
async def test_page_errors_are_pages_never_500(
    client, cqc_leader: Key, path: str, status: int
) -> None:
    await sign_in(client, cqc_leader)
    response = await client.get(path)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1" in response.text


async def test_signing_from_the_page(
    client, clock: FixedClock, cqc_agent: Key, cqc_leader: Key
) -> None:
    contacts = Contacts(client, clock)
    await contacts.connected(cqc_agent, "lgsco", at("2026-10-05T09:00:00"))
    clock.set(at("2026-10-20T10:00:00"))
    await sign_in(client, cqc_leader)
    open_month = await client.get("/reports/2026-10")
    assert "You can sign this report once October 2026 has ended" in open_month.text
    early = await client.post(
        "/reports/2026-10/sign",
        data={"fluctuation_note": "Early", "csrf_token": csrf(open_month)},
    )
    # Refused: POST/redirect/GET, so that a reload of the month's page does not post again.
    assert early.status_code == 303 and early.headers["location"] == "/reports/2026-10"
    early = await client.get("/reports/2026-10")
    assert (
        "You can sign this report once the month has ended" in early.text
        and 'class="error-summary"' in early.text
    )
    again = await client.get("/reports/2026-10")  # shown once
    assert (
        "once the month has ended" not in again.text and 'class="error-summary"' not in again.text
    )

    clock.set(at("2026-11-02T10:00:00"))
    page = await client.get("/reports/2026-10")
    blank = await client.post(
        "/reports/2026-10/sign", data={"fluctuation_note": "  ", "csrf_token": csrf(page)}
    )
    assert blank.status_code == 303
    blank = await client.get(blank.headers["location"])
    assert ">  </textarea>" in blank.text  # the note as typed
    assert "Enter the reasons for fluctuations" in blank.text
    assert 'aria-describedby="fluctuation_note-hint fluctuation_note-error"' in blank.text

    done = await client.post(
        "/reports/2026-10/sign",
        data={"fluctuation_note": "Half term <b>quiet</b>", "csrf_token": csrf(page)},
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/reports/2026-10?signed=1"
    shown = await client.get(done.headers["location"])
    assert "You signed version 1 of the October 2026 report for CQC" in shown.text
    assert "It is complete when LGSCO signs it too." in shown.text
    assert "Awaiting LGSCO" in shown.text
    assert "Half term &lt;b&gt;quiet&lt;/b&gt;" in shown.text  # escaped, never markup
    assert "has not signed version 1" in shown.text

    csv = await client.get("/reports/2026-10/contact-volumes.csv")
    assert csv.status_code == 200
    assert 'filename="contact-volumes-2026-10-v1.csv"' in csv.headers["content-disposition"]
    assert "cqc,lgsco,warm_transfers_connected,Warm transfers connected,1,0,1," in csv.text
    xlsx = await client.get("/reports/2026-10/contact-volumes.xlsx?version=1")
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert xlsx.content.startswith(b"PK")


def listed_months(page: httpx.Response) -> list[str]:
    return re.findall(r'<th scope="row"><a href="/reports/(\d{4}-\d{2})">', page.text)


async def test_months_before_the_first_record_are_never_overdue(
    client, clock: FixedClock, cqc_agent: Key, cqc_leader: Key
) -> None:
    """A new install whose first call is in November 2026: nothing before it is overdue."""
    await Contacts(client, clock).signpost(cqc_agent, "lgsco", at("2026-11-03T10:00:00"))
    clock.set(at("2026-12-05T10:00:00"))
    await sign_in(client, cqc_leader)
    reports = await client.get("/reports")
    assert listed_months(reports) == ["2026-12", "2026-11"]
    assert "Overdue" not in reports.text
    september = await client.get("/reports/2026-09")
    assert september.status_code == 200
    assert "Overdue" not in september.text
    assert "September 2026 is before the service started" in september.text


async def test_the_first_report_month_setting_starts_the_list(
    app, client, clock: FixedClock, cqc_leader: Key
) -> None:
    """Live since August 2026, with no records yet: August on are listed and can be overdue;
    July is not."""
    app.state.settings = app.state.settings.model_copy(update={"first_report_month": "2026-08"})
    await sign_in(client, cqc_leader)
    reports = await client.get("/reports")
    assert listed_months(reports) == ["2026-11", "2026-10", "2026-09", "2026-08"]
    assert "3 reports are overdue" not in reports.text  # October is still due (10th working day)
    assert "2 reports are overdue" in reports.text
    july = await client.get("/reports/2026-07")
    assert "Overdue" not in july.text and "before the service started" in july.text
    august = await client.get("/reports/2026-08")
    assert "Overdue" in august.text


def test_the_first_report_month_is_a_month() -> None:
    from pydantic import ValidationError

    from app.core.settings import Settings

    assert Settings(first_report_month=" 2026-08 ").first_report_month == "2026-08"
    with pytest.raises(ValidationError):
        Settings(first_report_month="August")
