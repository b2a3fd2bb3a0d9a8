"""Advisers' pages without a browser: who may sign in and see what, the transfer assistant's
steps and the API's rules and codes on them (next to the fields, other values kept), signposts,
feedback, and the team leaders' link to the month's feedback."""

import html
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from app.core.clock import FixedClock
from app.core.database import make_sessionmaker
from app.web.models import WebSessionRecord
from app.web.sessions import FLASH_MAX_AGE_SECONDS
from tests.conftest import Key
from tests.test_web_reports import csrf, sign_in

TRANSFER_PATH = re.compile(r"^/transfer/[0-9a-f-]{36}$")
FEEDBACK_PATH = re.compile(r"^/feedback/([0-9a-f-]{36})$")


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


def nav(page: httpx.Response) -> list[str]:
    block = re.search(r'<nav class="header__nav".*?</nav>', page.text, re.S)
    return re.findall(r">([^<>]+)</a>", block.group(0)) if block else []


def field_error(page: httpx.Response, field_id: str) -> str:
    """The error shown next to the field, as one line of text."""
    match = re.search(
        rf'<p class="error-message" id="{field_id}-error"[^>]*>(.*?)</p>', page.text, re.S
    )
    assert match, page.text
    return html.unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


def field_code(page: httpx.Response, field_id: str) -> str:
    """The API's code of the error next to the field: kept in an attribute, never shown."""
    match = re.search(
        rf'<p class="error-message" id="{field_id}-error" data-code="([^"]+)"', page.text
    )
    assert match, page.text
    return match.group(1)


def value_of(page: httpx.Response, name: str) -> str:
    element = re.search(rf'<input[^>]* name="{re.escape(name)}"[^>]*>', page.text)
    assert element, name
    value = re.search(r' value="([^"]*)"', element.group(0))
    return html.unescape(value.group(1)) if value else ""


async def post_form(client: httpx.AsyncClient, path: str, form_page: str, **fields: str):  # type: ignore[no-untyped-def]
    """Post a form as the browser would, with the CSRF token of the page it is on."""
    page = await client.get(form_page)
    return await client.post(path, data={"csrf_token": csrf(page), **fields})


async def shown(client: httpx.AsyncClient, response: httpx.Response) -> httpx.Response:
    """A form that recorded nothing (refused, or only stamped) answers 303 to its own page
    (POST/redirect/GET): the page the browser then shows, with the problems and values kept."""
    assert response.status_code == 303, response.text
    return await client.get(response.headers["location"])


async def dial(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    """Press "Dialling now" on the start form with `fields` filled in."""
    return await post_form(client, "/transfer", "/transfer", action="dial", **fields)  # type: ignore[no-any-return]


async def start_to_lgsco(client: httpx.AsyncClient, **fields: str) -> str:
    """A CQC adviser presses "Dialling now"; the transfer page's path."""
    response = await dial(client, **{"to_org": "lgsco", "sender_reference": "CQC-1001", **fields})
    assert response.status_code == 303, response.text
    assert TRANSFER_PATH.match(response.headers["location"])
    return str(response.headers["location"])


async def test_an_adviser_signs_in_to_the_adviser_pages_only(client, cqc_agent: Key) -> None:
    response = await sign_in(client, cqc_agent)
    assert response.status_code == 303 and response.headers["location"] == "/transfer"
    page = await client.get("/transfer")
    assert nav(page) == [
        "Transfer a caller",
        "Misdirection feedback",
        "Call backs for us",
        "Feedback about us",
    ]
    reports = await client.get("/reports")
    assert reports.status_code == 403 and "This page is for team leaders." in reports.text
    assert (await client.get("/reports/2026-10/contact-volumes.csv")).status_code == 403


async def test_a_team_leader_sees_both(client, lgsco_leader: Key) -> None:
    response = await sign_in(client, lgsco_leader)
    assert response.headers["location"] == "/reports"
    page = await client.get("/transfer")
    assert page.status_code == 200
    assert nav(page) == [
        "Monthly reports",
        "Transfer a caller",
        "Misdirection feedback",
        "Call backs for us",
        "Call backs overview",
        "Feedback about us",
    ]
    assert (await client.get("/feedback/new")).status_code == 200


async def test_the_pages_need_a_sign_in(client) -> None:
    for path in ("/transfer", "/feedback/new"):
        response = await client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/sign-in?next=")


async def test_the_start_form_shows_the_route_and_keeps_values_on_errors(
    client, lgsco_agent: Key
) -> None:
    await sign_in(client, lgsco_agent)
    page = await client.get("/transfer")
    assert "Dial <strong>03000 616 161</strong>" in page.text
    assert "Complaints about mental health" in page.text and "press 1" in page.text
    assert "Your case reference (LGSCO Reference, optional)" in page.text

    # No topic: the service's topic_required, next to the topic, the reference kept.
    refused = await dial(client, to_org="cqc", sender_reference="LG-9")
    refused = await shown(client, refused)
    assert refused.status_code == 200
    assert field_code(refused, "topic") == "topic_required"
    assert value_of(refused, "sender_reference") == "LG-9"

    # A reference without permission: the service asks for the permission.
    refused = await dial(client, to_org="cqc", topic="mental_health", sender_reference="LG-9")
    refused = await shown(client, refused)
    assert refused.status_code == 200
    assert field_code(refused, "permission_to_share_at") == "permission_to_share_required"
    assert 'value="mental_health" checked' in refused.text

    bad = await dial(client, to_org="cqc", topic="other", sender_reference="LG 9!")
    bad = await shown(client, bad)
    assert field_code(bad, "sender_reference") == "invalid_reference"


async def test_permission_is_stamped_by_the_server_or_typed(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    await sign_in(client, cqc_agent)
    stamped = await post_form(
        client,
        "/transfer",
        "/transfer",
        to_org="lgsco",
        sender_reference="CQC-7",
        action="permission_now",
    )
    stamped = await shown(client, stamped)
    assert stamped.status_code == 200
    assert "Permission recorded at 10:00:00" in stamped.text
    assert value_of(stamped, "sender_reference") == "CQC-7"  # nothing lost, nothing recorded

    later = await client.post(
        "/transfer",
        data={
            "csrf_token": csrf(stamped),
            "to_org": "lgsco",
            "sender_reference": "CQC-7",
            "permission_to_share_at": value_of(stamped, "permission_to_share_at"),
            "action": "dial",
        },
    )
    assert later.status_code == 303
    transfer = await client.get(later.headers["location"])
    assert "<dt>Permission to share</dt><dd>10:00:00</dd>" in transfer.text

    future = await dial(client, to_org="lgsco", sender_reference="CQC-7", permission_time="10:30")
    future = await shown(client, future)
    assert future.status_code == 200
    assert field_code(future, "permission_to_share_at") == "permission_to_share_in_future"
    assert value_of(future, "permission_time") == "10:30"

    nonsense = await dial(client, to_org="lgsco", sender_reference="CQC-7", permission_time="25:99")
    nonsense = await shown(client, nonsense)
    assert field_code(nonsense, "permission_to_share_at") == "invalid_time"


async def test_exactly_the_threshold_still_connects(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    await sign_in(client, cqc_agent)
    path = await start_to_lgsco(client, permission_time="09:59")
    waiting = await client.get(path)
    assert 'id="countdown-seconds">60<' in waiting.text
    assert 'data-deadline="2026-11-10T10:01:00.000Z"' in waiting.text
    assert 'data-server-now="2026-11-10T10:00:00.000Z"' in waiting.text
    assert '<script src="/static/transfer.js" defer></script>' in waiting.text
    assert '<meta http-equiv="refresh" content="61">' in waiting.text  # without script

    clock.advance(60)
    page = await client.get(path)
    assert 'id="countdown-seconds">0<' in page.text
    assert '<section id="callback" aria-labelledby="callback-title" hidden>' in page.text
    # A call back for waiting is not due yet: the service says so, with its code.
    early = await client.post(
        f"{path}/callback",
        data={
            "csrf_token": csrf(page),
            "reason": "wait_threshold_exceeded",
            "caller.name": "Ada Lovelace",
            "caller.contact_number": "07911 123456",
            "caller.provider": "Sunrise Care Home",
        },
    )
    early = await shown(client, early)
    assert early.status_code == 200 and "The caller has not waited 60 seconds yet" in early.text
    connected = await client.post(f"{path}/connected", data={"csrf_token": csrf(page)})
    assert connected.status_code == 303
    done = await client.get(path)
    assert "Warm transfer recorded" in done.text and "after 60 seconds" in done.text


async def test_past_the_threshold_the_page_is_the_callback_form(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    await sign_in(client, cqc_agent)
    path = await start_to_lgsco(client, permission_time="09:59")
    clock.advance(61)
    page = await client.get(path)
    assert "The caller has waited more than 60 seconds. Request a call back." in page.text
    assert '<section id="callback" aria-labelledby="callback-title">' in page.text
    assert 'name="reason" value="wait_threshold_exceeded"' in page.text
    assert "countdown" not in page.text and "http-equiv" not in page.text

    # If they answer now, it is still recorded: the button stays beside the form.
    assert ">They answered: connected</button>" in page.text
    assert ">Caller hung up</button>" in page.text

    caller = {"caller.name": "Ada Lovelace", "caller.provider": "Sunrise Care Home"}
    bad = await client.post(
        f"{path}/callback",
        data={
            "csrf_token": csrf(page),
            "reason": "wait_threshold_exceeded",
            "caller.contact_number": "12345",
            **caller,
        },
    )
    bad = await shown(client, bad)
    assert bad.status_code == 200
    assert field_code(bad, "caller-contact_number") == "invalid_phone_number"
    assert field_error(bad, "caller-contact_number") == (
        "Error: 12345 is not a number in use in the UK. Check it with the caller"
    )
    assert value_of(bad, "caller.name") == "Ada Lovelace"
    assert value_of(bad, "caller.provider") == "Sunrise Care Home"
    assert value_of(bad, "caller.contact_number") == "12345"

    blank = await client.post(
        f"{path}/callback",
        data={"csrf_token": csrf(page), "reason": "wait_threshold_exceeded", "caller.name": " "},
    )
    blank = await shown(client, blank)
    assert "Enter the caller's name" in field_error(blank, "caller-name")
    assert "Enter the caller's contact number" in field_error(blank, "caller-contact_number")

    sent = await client.post(
        f"{path}/callback",
        data={
            "csrf_token": csrf(page),
            "reason": "wait_threshold_exceeded",
            "caller.contact_number": "07911 123456",
            **caller,
        },
    )
    assert sent.status_code == 303 and sent.headers["location"] == path
    done = await client.get(path)
    assert "Call back request made" in done.text
    assert "<dt>Emailed to</dt><dd>intake@lgo.org.uk</dd>" in done.text
    assert '<dd id="delivery-status">Queued</dd>' in done.text
    assert "Ada Lovelace" not in done.text  # the caller's details are not shown again

    again = await shown(
        client, await client.post(f"{path}/connected", data={"csrf_token": csrf(done)})
    )
    assert again.status_code == 200 and "This call has already been recorded" in again.text


async def test_they_answered_after_the_threshold_is_a_warm_transfer(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    await sign_in(client, cqc_agent)
    path = await start_to_lgsco(client, permission_time="09:59")
    clock.advance(65)
    page = await client.get(path)
    connected = await client.post(f"{path}/connected", data={"csrf_token": csrf(page)})
    assert connected.status_code == 303 and connected.headers["location"] == path
    done = await client.get(path)
    assert "Warm transfer recorded" in done.text and "after 65 seconds" in done.text
    assert "counted as connected after the wait limit" in done.text


@pytest.mark.parametrize(
    ("button", "path_end", "heading"),
    [
        ("Caller declined", "declined", "Caller declined the transfer"),
        ("Caller hung up", "hung-up", "Caller hung up"),
    ],
)
async def test_the_caller_declines_or_hangs_up(
    client, clock: FixedClock, lgsco_agent: Key, button: str, path_end: str, heading: str
) -> None:
    await sign_in(client, lgsco_agent)
    started = await dial(client, to_org="cqc", topic="other")
    path = started.headers["location"]
    clock.advance(10)
    page = await client.get(path)
    assert f'<form method="post" action="{path}/{path_end}">' in page.text
    assert f">{button}</button>" in page.text
    ended = await client.post(f"{path}/{path_end}", data={"csrf_token": csrf(page)})
    assert ended.status_code == 303 and ended.headers["location"] == path
    done = await client.get(path)
    assert heading in done.text and "Nothing was shared" in done.text
    assert (await client.get(f"{path}/{path_end}")).headers["location"] == path
    again = await shown(
        client, await client.post(f"{path}/{path_end}", data={"csrf_token": csrf(done)})
    )
    assert "This call has already been recorded" in again.text


async def test_the_start_form_offers_the_bodys_contact_reasons(
    client, clock: FixedClock, cqc_agent: Key, cqc_leader: Key
) -> None:
    await sign_in(client, cqc_agent)
    form = await client.get("/transfer?to_org=lgsco")
    assert '<label class="label" for="contact_reason">Reason for the call (optional)</label>' in (
        form.text
    )
    assert '<option value="fees_and_charges">Fees and charges</option>' in form.text
    assert "Outside LGSCO&#39;s remit" in form.text
    refused = await shown(
        client,
        await dial(
            client, to_org="lgsco", sender_reference="CQC-1", contact_reason="mental_health"
        ),
    )
    assert field_code(refused, "contact_reason") == "unknown_contact_reason"
    assert field_error(refused, "contact_reason") == (
        "Error: Select the reason for the call from the list"
    )
    path = await start_to_lgsco(client, permission_time="09:59", contact_reason="fees_and_charges")
    transfer_id = path.rsplit("/", 1)[-1]
    read = await client.get(f"/v1/transfers/{transfer_id}", headers=cqc_leader.headers)
    assert read.json()["contact_reason"] == "fees_and_charges"


async def test_lines_busy_before_the_threshold(client, clock: FixedClock, lgsco_agent: Key) -> None:
    await sign_in(client, lgsco_agent)
    started = await dial(client, to_org="cqc", topic="other")
    path = started.headers["location"]
    clock.advance(10)
    busy = await client.get(f"{path}?busy=true")
    assert 'name="reason" value="high_call_volume"' in busy.text
    assert ">The caller has waited more than" not in busy.text  # the alert is empty
    # No reference yet and no permission: a call back needs both; the API's codes say so.
    fields = {
        "csrf_token": csrf(busy),
        "reason": "high_call_volume",
        "caller.name": "Grace Hopper",
        "caller.contact_number": "+1 202 555 0143",
        "caller.provider": "Riverside Council",
    }
    refused = await client.post(f"{path}/callback", data=fields)
    refused = await shown(client, refused)
    assert refused.status_code == 200
    assert field_code(refused, "sender_reference") == "sender_reference_required"
    assert 'name="reason" value="high_call_volume"' in refused.text  # still lines busy

    stamp = await client.post(
        f"{path}/callback", data={**fields, "sender_reference": "LG-5", "action": "permission_now"}
    )
    stamp = await shown(client, stamp)
    assert "Permission recorded at 10:00:10" in stamp.text
    assert value_of(stamp, "caller.name") == "Grace Hopper"
    sent = await client.post(
        f"{path}/callback",
        data={
            **fields,
            "sender_reference": "LG-5",
            "permission_to_share_at": value_of(stamp, "permission_to_share_at"),
        },
    )
    assert sent.status_code == 303
    done = await client.get(path)
    assert "<dd>Lines busy</dd>" in done.text and "concerns@cqc.org.uk" in done.text


async def test_signposted_instead(client, clock: FixedClock, cqc_agent: Key) -> None:
    await sign_in(client, cqc_agent)
    response = await post_form(
        client, "/transfer/signpost", "/transfer", to_org="lgsco", sender_reference="CQC-3"
    )
    assert response.status_code == 303
    page = await client.get(response.headers["location"])
    assert "Signpost to LGSCO recorded" in page.text and "reference CQC-3" in page.text
    wrong = await post_form(client, "/transfer/signpost", "/transfer", to_org="cqc")
    wrong = await shown(client, wrong)
    assert wrong.status_code == 200 and "You cannot transfer callers to CQC" in wrong.text


async def test_another_bodys_transfer_is_not_found(
    client, cqc_agent: Key, lgsco_agent: Key
) -> None:
    await sign_in(client, cqc_agent)
    path = await start_to_lgsco(client, permission_time="09:59")
    client.cookies.clear()
    await sign_in(client, lgsco_agent)
    assert (await client.get(path)).status_code == 404
    assert (await client.get("/transfer/not-a-uuid")).status_code == 404


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/transfer", {"action": "dial", "to_org": "lgsco"}),
        ("/feedback/new", {"about_org": "lgsco"}),
    ],
)
async def test_every_adviser_form_needs_the_csrf_token(
    client, cqc_agent: Key, path: str, fields: dict[str, str]
) -> None:
    await sign_in(client, cqc_agent)
    response = await client.post(path, data={"csrf_token": "forged", **fields})
    assert response.status_code == 403 and "Your form has expired" in response.text


FEEDBACK = {
    "about_org": "lgsco",
    "case_references": "CQC-1001, LG-2002",
    "reason_for_contact": "Complaint about a council's care fees",
    "names_and_times": "Adviser J, 10:15",
    "correct_advice": "Fees complaints go to the Ombudsman",
    "suggested_action": "Refresh the team on the fees route",
}


async def test_feedback_is_validated_as_in_the_api(client, cqc_agent: Key) -> None:
    await sign_in(client, cqc_agent)
    form = await client.get("/feedback/new")
    assert "emailed to intakemanagers@lgo.org.uk" in form.text
    bad = await post_form(
        client,
        "/feedback/new",
        "/feedback/new",
        **{**FEEDBACK, "case_references": "", "correct_advice": "a =?x", "occurred_at": "x"},
    )
    bad = await shown(client, bad)
    assert bad.status_code == 200
    assert field_code(bad, "occurred_at") == "invalid_datetime"
    assert "Enter the case references" in field_error(bad, "case_references")
    assert field_code(bad, "correct_advice") == "invalid_characters"
    assert "Refresh the team on the fees route" in bad.text  # the other values are kept
    bad = await post_form(
        client, "/feedback/new", "/feedback/new", **{**FEEDBACK, "case_references": "A B!"}
    )
    bad = await shown(client, bad)
    assert field_code(bad, "case_references") == "invalid_reference"
    assert value_of(bad, "case_references") == "A B!"
    future = await post_form(
        client, "/feedback/new", "/feedback/new", **FEEDBACK, occurred_at="2026-12-01T09:00"
    )
    future = await shown(client, future)
    assert field_code(future, "occurred_at") == "timestamp_in_future"


async def test_feedback_shows_where_it_went_and_leaders_find_the_months_list(
    client, cqc_agent: Key, cqc_leader: Key
) -> None:
    await sign_in(client, cqc_agent)
    sent = await post_form(client, "/feedback/new", "/feedback/new", **FEEDBACK)
    assert sent.status_code == 303
    match = FEEDBACK_PATH.match(sent.headers["location"])
    assert match
    page = await client.get(sent.headers["location"])
    assert "Feedback recorded: the email goes to intakemanagers@lgo.org.uk" in page.text
    assert match.group(1) in page.text
    assert "/reports/" not in page.text  # an adviser cannot open the report

    api = await client.get(f"/v1/feedback/{match.group(1)}", headers=cqc_agent.headers)
    assert api.json()["case_references"] == ["CQC-1001", "LG-2002"]

    client.cookies.clear()
    await sign_in(client, cqc_leader)
    page = await client.get(sent.headers["location"])
    assert '<a href="/reports/2026-11#feedback">All feedback for November 2026</a>' in page.text
    report = await client.get("/reports/2026-11")
    assert '<a href="#feedback">1 this month</a>' in report.text
    assert "Refresh the team on the fees route" in report.text


def summary(page: httpx.Response) -> list[tuple[str, str]]:
    """The error summary's entries: each link's target and its visible sentence."""
    block = re.search(r'<div class="error-summary".*?</ul>', page.text, re.S)
    assert block, page.text
    return [
        (target, html.unescape(text))
        for target, text in re.findall(r'<a href="#([^"]+)">([^<]+)</a>', block.group(0))
    ]


async def test_the_empty_call_back_form_shows_every_problem_at_once(
    client, clock: FixedClock, lgsco_agent: Key
) -> None:
    """Sent empty once: the caller's details, the reference and the permission, together."""
    await sign_in(client, lgsco_agent)
    started = await dial(client, to_org="cqc", topic="other")
    path = started.headers["location"]
    busy = await client.get(f"{path}?busy=true")
    empty = await client.post(
        f"{path}/callback", data={"csrf_token": csrf(busy), "reason": "high_call_volume"}
    )
    empty = await shown(client, empty)
    assert empty.status_code == 200
    assert summary(empty) == [
        ("caller-name", "Enter the caller's name"),
        ("caller-contact_number", "Enter the caller's contact number"),
        ("caller-provider", "Enter the name of the service provider"),
        ("sender_reference", "Enter your case reference: CQC needs it for this call"),
        (
            "permission_to_share_at",
            "Record when the caller gave permission to share: press Permission given now, "
            "or type the time it was given",
        ),
    ]
    # Each link lands on a control with that id, and each field shows its own error.
    for target, sentence in summary(empty):
        assert f'id="{target}"' in empty.text
        assert field_error(empty, target) == f"Error: {sentence}"

    # Wrong in every way at once, every value kept.
    wrong = await client.post(
        f"{path}/callback",
        data={
            "csrf_token": csrf(busy),
            "reason": "high_call_volume",
            "caller.name": "Grace Hopper",
            "caller.contact_number": "07911 654321",
            "sender_reference": "LG 5!",
            "permission_time": "10:30",
        },
    )
    wrong = await shown(client, wrong)
    assert [target for target, _ in summary(wrong)] == [
        "caller-contact_number",
        "caller-provider",
        "sender_reference",
        "permission_to_share_at",
    ]
    assert field_code(wrong, "permission_to_share_at") == "permission_to_share_in_future"
    assert value_of(wrong, "caller.name") == "Grace Hopper"
    assert value_of(wrong, "caller.contact_number") == "07911 654321"
    assert value_of(wrong, "sender_reference") == "LG 5!"
    assert value_of(wrong, "permission_time") == "10:30"


async def test_the_start_form_shows_every_problem_at_once(client, cqc_agent: Key) -> None:
    await sign_in(client, cqc_agent)
    empty = await dial(client, to_org="lgsco")
    empty = await shown(client, empty)
    assert empty.status_code == 200
    assert [target for target, _ in summary(empty)] == [
        "sender_reference",
        "permission_to_share_at",
    ]
    assert field_error(empty, "sender_reference") == (
        "Error: Enter your case reference: LGSCO needs it for this call"
    )


async def test_the_feedback_form_checks_the_date_with_the_rest(client, cqc_agent: Key) -> None:
    await sign_in(client, cqc_agent)
    bad = await post_form(
        client,
        "/feedback/new",
        "/feedback/new",
        **{**FEEDBACK, "case_references": "", "occurred_at": "2026-12-01T09:00"},
    )
    bad = await shown(client, bad)
    assert [target for target, _ in summary(bad)] == ["case_references", "occurred_at"]
    assert field_error(bad, "occurred_at") == "Error: When it happened must be now or in the past"


async def flashes(app) -> list[object]:  # type: ignore[no-untyped-def]
    """What the web sessions' rows keep of refused forms right now."""
    async with make_sessionmaker(app.state.engine)() as session:
        return list((await session.execute(select(WebSessionRecord.flash))).scalars())


async def test_a_refused_form_is_shown_once_after_a_redirect_and_not_kept(
    app, client, clock: FixedClock, lgsco_agent: Key
) -> None:
    """POST/redirect/GET for a refused call back form: the POST records nothing and answers
    303 to the transfer's page; that GET shows every problem and every value typed, once; the
    caller's details are then gone from the server, and a reload is a plain GET of the page."""
    await sign_in(client, lgsco_agent)
    started = await dial(client, to_org="cqc", topic="other")
    path = started.headers["location"]
    busy = await client.get(f"{path}?busy=true")
    typed = {
        "csrf_token": csrf(busy),
        "reason": "high_call_volume",
        "caller.name": "Grace Hopper",
        "caller.contact_number": "07911 654321",
    }
    refused = await client.post(f"{path}/callback", data=typed)
    assert refused.status_code == 303 and refused.headers["location"] == path
    assert [f for f in await flashes(app) if f] != []
    page = await client.get(path)
    assert page.status_code == 200
    assert [target for target, _ in summary(page)] == [
        "caller-contact_number",
        "caller-provider",
        "sender_reference",
        "permission_to_share_at",
    ]
    assert value_of(page, "caller.name") == "Grace Hopper"
    assert 'name="reason" value="high_call_volume"' in page.text  # still lines busy
    assert [f for f in await flashes(app) if f] == []  # shown, so no longer kept

    reload = await client.get(path)
    assert "Grace Hopper" not in reload.text and "error-summary" not in reload.text
    transfer = await client.get(
        f"/v1/transfers/{path.rsplit('/', 1)[1]}", headers=lgsco_agent.headers
    )
    assert transfer.json()["status"] == "waiting"  # nothing was recorded

    # Kept for one page only: the start form's problems are not shown on another page.
    refused = await dial(client, to_org="cqc")
    assert refused.headers["location"] == "/transfer"
    assert "error-summary" not in (await client.get("/feedback/new")).text
    assert "error-summary" in (await client.get("/transfer")).text


async def test_a_flash_left_unshown_expires_in_minutes(
    app, client, clock: FixedClock, lgsco_agent: Key
) -> None:
    await sign_in(client, lgsco_agent)
    await dial(client, to_org="cqc")
    async with make_sessionmaker(app.state.engine)() as session:
        old = datetime.now(UTC) - timedelta(seconds=FLASH_MAX_AGE_SECONDS + 1)
        await session.execute(update(WebSessionRecord).values(flash_at=old))
        await session.commit()
    assert "error-summary" not in (await client.get("/transfer")).text
    assert [f for f in await flashes(app) if f] == []


async def test_a_transfer_closed_with_no_outcome_can_be_put_right_that_day(
    app, client, clock: FixedClock, cqc_agent: Key
) -> None:
    from app.transfers.jobs import close_forgotten_transfers

    await sign_in(client, cqc_agent)
    path = await start_to_lgsco(client, permission_time="09:59")
    clock.advance(60 + 7200 + 1)
    assert await close_forgotten_transfers(app.state.sessionmaker, 7200, clock.now()) == 1
    page = await client.get(path)
    assert "No outcome was recorded" in page.text
    assert "until midnight on the day of the call" in page.text
    assert ">Caller hung up</button>" in page.text
    hung_up = await client.post(f"{path}/hung-up", data={"csrf_token": csrf(page)})
    assert hung_up.status_code == 303
    assert "Caller hung up" in (await client.get(path)).text
