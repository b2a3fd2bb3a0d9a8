"""The pages of a call back's life, without a browser: LGSCO's advisers find CQC's request in
"Call backs for us", acknowledge it, record each call and close it; CQC's adviser sees each
step on the transfer's page; every refusal is the API's code in plain words next to its
button; another body sees none of it; team leaders see both directions on one page."""

import html
import re
from pathlib import Path

import httpx
import pytest

from app.core.clock import FixedClock
from app.protocol.routes import RouteTable, load_table
from tests.conftest import Key, Keys
from tests.helpers import CALLER, failed_transfer
from tests.test_third_body import PHSO
from tests.test_web_advisers import field_code, field_error, nav
from tests.test_web_messages import QUOTED_ID, SNAKE
from tests.test_web_navigation import BROWSER, visible_text
from tests.test_web_reports import csrf, sign_in

# START is Tuesday 10 November 2026, 10:00 in London: LGSCO's first call is due at 14:00.
FIRST_DUE_HOURS = 4


@pytest.fixture
def routes(tmp_path: Path) -> RouteTable:
    """The default table and a third body (PHSO), whose keys must see nothing of CQC's and
    LGSCO's call backs."""
    path = tmp_path / "phso.toml"
    path.write_text(PHSO, encoding="utf-8")
    return load_table(path)


async def made_by_cqc(client: httpx.AsyncClient, cqc: Key, clock: FixedClock) -> str:
    """A CQC adviser's transfer to LGSCO failed on busy lines: the call back request's id."""
    return str((await failed_transfer(client, cqc, clock.now()))["callback_request_id"])


async def press(
    client: httpx.AsyncClient, callback_id: str, action: str, **fields: str
) -> httpx.Response:
    """Press a button of the request's page (its CSRF token and version), then follow the
    redirect (POST/redirect/GET): the page the browser then shows."""
    page = await client.get(f"/callbacks/{callback_id}")
    version = re.search(r'name="version" value="(\d+)"', page.text)
    data = {"csrf_token": csrf(page), "version": version.group(1) if version else "", **fields}
    answer = await client.post(f"/callbacks/{callback_id}/{action}", data=data)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/callbacks/{callback_id}"
    return await client.get(answer.headers["location"])


def text_of(page: httpx.Response, element_id: str) -> str:
    match = re.search(
        rf'<[a-z0-9]+ [^>]*id="{element_id}"[^>]*>(.*?)</(dd|div|p|tr|table)>', page.text, re.S
    )
    assert match, (element_id, page.text)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def buttons(page: httpx.Response) -> list[str]:
    main = re.search(r"<main.*?</main>", page.text, re.S)
    assert main
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", "", b)).split())
        for b in re.findall(r"<button[^>]*>(.*?)</button>", main.group(0), re.S)
    ]


def assert_plain_words(page: httpx.Response) -> None:
    text = visible_text(page)
    assert not SNAKE.search(text), SNAKE.findall(text)
    assert not QUOTED_ID.search(text), QUOTED_ID.findall(text)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", text), "an internal id is shown"


async def test_lgsco_acknowledges_calls_and_reaches_the_caller_and_cqc_sees_each_step(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    transfer = await failed_transfer(client, cqc_agent, clock.now())
    callback_id = str(transfer["callback_request_id"])

    await sign_in(client, lgsco_agent)
    listed = await client.get("/callbacks")
    assert listed.status_code == 200
    assert "Call backs for us" in nav(listed)
    assert f'href="/callbacks/{callback_id}"' in listed.text
    assert (
        "CQC-1001" in listed.text
        and ">New</strong>" in listed.text
        and ">Overdue</strong>" not in listed.text
    )
    assert_plain_words(listed)

    page = await client.get(f"/callbacks/{callback_id}")
    assert page.status_code == 200
    # The caller's details, large, for dialling: the number is a tel: link.
    assert '<a href="tel:+447911123456"><strong>07911 123456</strong></a>' in page.text
    assert "Call Ada Lovelace" in page.text and "About Sunrise Care Home" in page.text
    assert text_of(page, "sender-reference") == "CQC-1001"
    assert "Care Quality Commission" in page.text
    assert buttons(page) == [
        "Acknowledge",
        "No answer",
        "Voicemail left",
        "Busy",
        "Wrong number",
        "Reached",
        "Return",
    ]
    assert_plain_words(page)

    clock.advance(42 * 60)
    acknowledged = await press(client, callback_id, "acknowledge")
    assert text_of(acknowledged, "banner").startswith("Acknowledged at 10:42")
    assert text_of(acknowledged, "callback-state-acknowledged") == "Acknowledged by LGSCO at 10:42"
    assert "Acknowledge" not in buttons(acknowledged)  # taken on: only the calls and Return left

    clock.advance(3 * 60)
    no_answer = await press(client, callback_id, "attempts", result="no_answer")
    assert text_of(no_answer, "banner") == "No answer recorded at 10:45"
    assert text_of(no_answer, "callback-state-attempts") == "1 attempt: no answer 10:45"

    clock.advance(3 * 60 * 60 + 25 * 60)  # 14:10
    reached = await press(client, callback_id, "attempts", result="reached")
    assert text_of(reached, "banner") == "Reached recorded at 14:10: the call back is closed"
    assert text_of(reached, "callback-state-attempts") == (
        "2 attempts: no answer 10:45, reached 14:10"
    )
    assert "the caller was called back and spoken to" in text_of(reached, "callback-state-outcome")
    assert buttons(reached) == []  # a closed request: its outcome, no buttons
    # The banner is shown once: a reload shows the page without it.
    again = await client.get(f"/callbacks/{callback_id}")
    assert 'id="banner"' not in again.text

    # The CQC adviser's confirmation page shows each step.
    client.cookies.clear()
    await sign_in(client, cqc_agent)
    confirmation = await client.get(f"/transfer/{transfer['id']}")
    assert text_of(confirmation, "callback-state-acknowledged") == "Acknowledged by LGSCO at 10:42"
    assert text_of(confirmation, "callback-state-attempts") == (
        "2 attempts: no answer 10:45, reached 14:10"
    )
    assert_plain_words(confirmation)
    # The sending body's page of the request: its state, no caller details, no buttons now.
    own = await client.get(f"/callbacks/{callback_id}")
    assert own.status_code == 200 and "tel:" not in own.text and "Ada Lovelace" not in own.text
    assert buttons(own) == []


async def test_an_overdue_request_is_tagged_once_the_clock_passes_its_due_time(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    callback_id = await made_by_cqc(client, cqc_agent, clock)
    await sign_in(client, lgsco_agent)
    clock.advance(FIRST_DUE_HOURS * 60 * 60)  # exactly due: not yet overdue
    assert ">Overdue</strong>" not in (await client.get("/callbacks")).text
    clock.advance(1)
    listed = await client.get("/callbacks")
    assert "row--overdue" in listed.text and ">Overdue</strong>" in listed.text
    assert "4 hours ago" in listed.text
    overdue_only = await client.get("/callbacks?state=overdue")
    assert f"/callbacks/{callback_id}" in overdue_only.text
    page = await client.get(f"/callbacks/{callback_id}")
    assert ">Overdue</strong>" in page.text
    # Closed requests leave the default list, and show under "Closed".
    await press(client, callback_id, "attempts", result="wrong_number")
    assert f"/callbacks/{callback_id}" not in (await client.get("/callbacks")).text
    closed = await client.get("/callbacks?state=closed")
    assert f"/callbacks/{callback_id}" in closed.text and ">Closed</strong>" in closed.text
    # An unknown filter is the default one, not an error.
    assert (await client.get("/callbacks?state=nonsense")).status_code == 200


async def test_refusals_are_the_apis_codes_in_plain_words_next_to_the_button(
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    key_factory: Keys,
) -> None:
    callback_id = await made_by_cqc(client, cqc_agent, clock)
    await sign_in(client, lgsco_agent)

    # Return without a reason: next to the reasons.
    refused = await press(client, callback_id, "return")
    assert field_code(refused, "reason") == "return_reason_required"
    assert field_error(refused, "reason") == "Error: Select why this call back is not for your team"
    assert "There is a problem" in refused.text
    assert_plain_words(refused)

    # Another adviser acknowledged it while this page was open.
    stale = await client.get(f"/callbacks/{callback_id}")
    colleague = await key_factory.make("lgsco", "agent", "lgsco desk 2")
    done = await client.post(f"/v1/callbacks/{callback_id}/acknowledge", headers=colleague.headers)
    assert done.status_code == 200
    answer = await client.post(
        f"/callbacks/{callback_id}/acknowledge", data={"csrf_token": csrf(stale), "version": "1"}
    )
    again = await client.get(answer.headers["location"])
    assert field_code(again, "acknowledge") == "callback_already_acknowledged"
    assert "Someone else took this call back on" in field_error(again, "acknowledge")

    # A call recorded from the page as it was before that change: the page's version is stale.
    answer = await client.post(
        f"/callbacks/{callback_id}/attempts",
        data={"csrf_token": csrf(stale), "version": "1", "result": "busy"},
    )
    again = await client.get(answer.headers["location"])
    assert field_code(again, "result") == "precondition_failed"
    # A result no button sends.
    answer = await client.post(
        f"/callbacks/{callback_id}/attempts",
        data={"csrf_token": csrf(stale), "result": "shouted"},
    )
    again = await client.get(answer.headers["location"])
    assert field_code(again, "result") == "enum"
    assert_plain_words(again)

    # Returned with a reason: closed, and nothing more can be done.
    returned = await press(client, callback_id, "return", reason="duplicate")
    assert text_of(returned, "banner") == "Returned to CQC (duplicate): the call back is closed"
    assert "Returned by LGSCO" in text_of(returned, "callback-state-outcome")
    answer = await client.post(
        f"/callbacks/{callback_id}/attempts",
        data={"csrf_token": csrf(returned), "result": "busy"},
    )
    closed = await client.get(answer.headers["location"])
    assert field_code(closed, "result") == "callback_closed"

    # Without the page's CSRF token nothing happens.
    forged = await client.post(f"/callbacks/{callback_id}/acknowledge", data={"version": "1"})
    assert forged.status_code == 403 and "Your form has expired" in forged.text


async def test_the_sending_body_sees_the_state_and_may_withdraw(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    callback_id = await made_by_cqc(client, cqc_agent, clock)
    await sign_in(client, cqc_agent)
    own = await client.get(f"/callbacks/{callback_id}")
    assert own.status_code == 200
    assert buttons(own) == ["Withdraw"]
    assert text_of(own, "callback-state-acknowledged") == "Not acknowledged by LGSCO yet"
    assert "tel:" not in own.text
    # The receiving body's buttons are not the sending body's: refused next to the control.
    answer = await client.post(
        f"/callbacks/{callback_id}/acknowledge", data={"csrf_token": csrf(own)}
    )
    refused = await client.get(answer.headers["location"])
    assert field_code(refused, "acknowledge") == "callback_receiving_body_only"
    # Not in CQC's own "Call backs for us": it is LGSCO's to make.
    assert f"/callbacks/{callback_id}" not in (await client.get("/callbacks")).text

    withdrawn = await press(client, callback_id, "withdraw")
    assert text_of(withdrawn, "banner") == "Withdrawn: the call back request is closed"
    assert "Withdrawn by CQC at 10:00" in text_of(withdrawn, "callback-state-outcome")
    assert buttons(withdrawn) == []

    client.cookies.clear()
    await sign_in(client, lgsco_agent)
    page = await client.get(f"/callbacks/{callback_id}")
    assert "Withdrawn by CQC" in page.text and buttons(page) == []


async def test_another_body_sees_none_of_it(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, key_factory: Keys
) -> None:
    callback_id = await made_by_cqc(client, cqc_agent, clock)
    phso = await key_factory.make("phso", "team_leader", "phso desk")
    await sign_in(client, phso)
    page = await client.get(f"/callbacks/{callback_id}", headers=BROWSER)
    assert page.status_code == 404 and "Page not found" in page.text
    assert "CQC-1001" not in page.text
    form = await client.get("/callbacks")
    answer = await client.post(
        f"/callbacks/{callback_id}/acknowledge", data={"csrf_token": csrf(form)}
    )
    assert answer.status_code == 404 and "Page not found" in answer.text
    assert f"/callbacks/{callback_id}" not in form.text
    overview = await client.get("/callbacks/overview")
    assert f"/callbacks/{callback_id}" not in overview.text
    assert (await client.get("/callbacks/not-an-id")).status_code == 404


async def test_team_leaders_see_open_and_overdue_both_ways_on_one_page(
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    lgsco_leader: Key,
) -> None:
    incoming = await made_by_cqc(client, cqc_agent, clock)
    second = await made_by_cqc(client, cqc_agent, clock)
    # An LGSCO transfer to CQC that failed: outgoing for LGSCO.
    started = await client.post(
        "/v1/transfers",
        json={"to_org": "cqc", "topic": "other"},
        headers=lgsco_agent.headers,
    )
    assert started.status_code == 201, started.text
    failed = await client.post(
        f"/v1/transfers/{started.json()['id']}/failed",
        json={
            "reason": "high_call_volume",
            "caller": CALLER,
            "sender_reference": "LG-7",
            "permission_to_share_at": clock.now().isoformat(),
        },
        headers=lgsco_agent.headers,
    )
    assert failed.status_code == 200, failed.text
    outgoing = failed.json()["callback_request_id"]
    await client.post(
        f"/v1/callbacks/{second}/attempts", json={"result": "reached"}, headers=lgsco_agent.headers
    )
    clock.advance(FIRST_DUE_HOURS * 60 * 60 + 60)

    await sign_in(client, lgsco_agent)
    refused = await client.get("/callbacks/overview")
    assert refused.status_code == 403 and "This page is for team leaders." in refused.text
    assert "Call backs overview" not in nav(await client.get("/callbacks"))

    client.cookies.clear()
    await sign_in(client, lgsco_leader)
    page = await client.get("/callbacks/overview")
    assert page.status_code == 200
    assert nav(page)[-3:] == ["Call backs for us", "Call backs overview", "Feedback about us"]
    current = re.findall(r'<a href="([^"]+)" aria-current="page"', page.text)
    assert current == ["/callbacks/overview"]
    assert text_of(page, "counts-incoming") == "For us to make 1 1"
    assert text_of(page, "counts-outgoing") == "Asked of the other body 1 1"
    assert f"/callbacks/{incoming}" in page.text and f"/callbacks/{outgoing}" in page.text
    assert f"/callbacks/{second}" not in page.text  # closed
    assert_plain_words(page)
    # The outgoing request's page: LGSCO's own, state only.
    own = await client.get(f"/callbacks/{outgoing}")
    assert buttons(own) == ["Withdraw"]


async def test_every_button_address_answers_a_get_with_the_requests_page(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    callback_id = await made_by_cqc(client, cqc_agent, clock)
    await sign_in(client, lgsco_agent)
    for action in ("acknowledge", "attempts", "return", "withdraw"):
        back = await client.get(f"/callbacks/{callback_id}/{action}")
        assert back.status_code == 303
        assert back.headers["location"] == f"/callbacks/{callback_id}"


async def test_the_emails_link_leads_the_receiving_team_through_sign_in_to_the_request(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    """The call back email's extra line (HANDOFF_PUBLIC_URL) links to `/callbacks/{id}`."""
    callback_id = await made_by_cqc(client, cqc_agent, clock)
    first = await client.get(f"/callbacks/{callback_id}")
    assert first.status_code == 303
    assert first.headers["location"] == f"/sign-in?next=%2Fcallbacks%2F{callback_id}"
    signed_in = await sign_in(client, lgsco_agent, f"/callbacks/{callback_id}")
    assert signed_in.headers["location"] == f"/callbacks/{callback_id}"
    page = await client.get(f"/callbacks/{callback_id}")
    assert page.status_code == 200 and "Call Ada Lovelace" in page.text
