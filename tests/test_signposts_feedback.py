"""Signposts (counted, no personal data) and misdirection feedback (s.6.2)."""

from datetime import timedelta

import pytest

from app.core.clock import FixedClock
from tests.conftest import Key
from tests.helpers import assert_problem, iso

FEEDBACK = {
    "about_org": "lgsco",
    "case_references": ["CQC-1001", "LG-77/2026"],
    "reason_for_contact": "Caller wanted to complain about fees at a care home.",
    "names_and_times": "Adviser J at 10:05, 9 November",
    "correct_advice": "Fees complaints go to the Ombudsman, not CQC.",
    "suggested_action": "Refresh the intake script on fees.",
}


async def test_an_adviser_records_a_signpost(client, clock: FixedClock, lgsco_agent: Key) -> None:
    response = await client.post(
        "/v1/signposts",
        json={"to_org": "cqc", "sender_reference": "LG-5"},
        headers=lgsco_agent.headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["from_org"] == "lgsco" and body["to_org"] == "cqc"
    assert body["signposted_at"] == iso(clock.now()).replace("+00:00", "Z")
    again = await client.get(f"/v1/signposts/{body['id']}", headers=lgsco_agent.headers)
    assert again.json() == body


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"to_org": "lgsco"}, "no_route"),
        ({"to_org": "nowhere"}, "no_route"),
        ({"to_org": "cqc", "caller_name": "Ada"}, "validation_error"),
        ({"to_org": "cqc", "signposted_at": "2026-11-10T10:00:00"}, "naive_datetime"),
        ({"to_org": "cqc", "signposted_at": "2030-01-01T10:00:00Z"}, "timestamp_in_future"),
    ],
)
async def test_bad_signposts_are_refused(client, lgsco_agent: Key, body: dict, code: str) -> None:
    response = await client.post("/v1/signposts", json=body, headers=lgsco_agent.headers)
    assert_problem(response, 422, code)


async def test_feedback_is_addressed_to_the_other_bodys_managers(
    client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:
    about_lgsco = await client.post("/v1/feedback", json=FEEDBACK, headers=cqc_agent.headers)
    assert about_lgsco.status_code == 201, about_lgsco.text
    assert about_lgsco.json()["mailbox"] == "intakemanagers@lgo.org.uk"
    about_cqc = await client.post(
        "/v1/feedback", json={**FEEDBACK, "about_org": "cqc"}, headers=lgsco_agent.headers
    )
    assert about_cqc.json()["mailbox"] == "NCSCConcernsTeamTMs@cqc.org.uk"

    listed = await client.get("/v1/feedback?month=2026-11", headers=cqc_leader.headers)
    assert [f["id"] for f in listed.json()["items"]] == [about_lgsco.json()["id"]]
    assert listed.json()["items"][0]["case_references"] == ["CQC-1001", "LG-77/2026"]
    october = await client.get("/v1/feedback?month=2026-10", headers=cqc_leader.headers)
    assert october.json()["items"] == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"about_org": "cqc"}, "no_route"),
        ({"case_references": []}, "validation_error"),
        ({"case_references": ["bad  ref"]}, "invalid_reference"),
        ({"reason_for_contact": "line\rbreak"}, "invalid_characters"),
        ({"correct_advice": "   "}, "blank"),
        ({"occurred_at": "2026-11-10T09:00:00"}, "naive_datetime"),
    ],
)
async def test_bad_feedback_is_refused(client, cqc_agent: Key, change: dict, code: str) -> None:
    response = await client.post(
        "/v1/feedback", json={**FEEDBACK, **change}, headers=cqc_agent.headers
    )
    assert response.status_code == 422
    assert response.json()["code"] in (code, "validation_error")
    assert code in {e["code"] for e in response.json().get("errors", [])} | {
        response.json()["code"]
    }


async def test_feedback_keeps_line_breaks_in_long_text(client, cqc_agent: Key) -> None:
    response = await client.post(
        "/v1/feedback",
        json={**FEEDBACK, "names_and_times": "J at 10:05\r\nK at 10:20"},
        headers=cqc_agent.headers,
    )
    assert response.json()["names_and_times"] == "J at 10:05\nK at 10:20"


async def test_feedback_about_a_future_event_is_refused(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    response = await client.post(
        "/v1/feedback",
        json={**FEEDBACK, "occurred_at": iso(clock.now() + timedelta(hours=1))},
        headers=cqc_agent.headers,
    )
    assert_problem(response, 422, "timestamp_in_future")
