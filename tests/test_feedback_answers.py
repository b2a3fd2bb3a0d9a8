"""Feedback that gets an answer (issue 17): the body a feedback is about lists and reads it,
acknowledges it and responds (remedial action, training issue), which closes it; the sender
sees the state and the answer; nobody else sees any of it."""

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.core.clock import FixedClock
from app.protocol.routes import RouteTable, load_table
from tests.conftest import Key, Keys
from tests.helpers import assert_problem
from tests.test_signposts_feedback import FEEDBACK
from tests.test_third_body import PHSO

ANSWER = {"remedial_action": "Refreshed the fees script\nwith the team.", "training_issue": True}


@pytest.fixture
def routes(tmp_path: Path) -> RouteTable:
    """The default table and a third body, PHSO, which the feedback is not about."""
    path = tmp_path / "routes.toml"
    path.write_text(PHSO, encoding="utf-8")
    return load_table(path)


async def _feedback(client: httpx.AsyncClient, key: Key) -> str:
    made = await client.post("/v1/feedback", json=FEEDBACK, headers=key.headers)
    assert made.status_code == 201, made.text
    assert made.json()["state"] == "submitted"
    return str(made.json()["id"])


async def _post(
    client: httpx.AsyncClient, key: Key, feedback_id: str, action: str, body: Any = None
) -> httpx.Response:
    return await client.post(f"/v1/feedback/{feedback_id}/{action}", json=body, headers=key.headers)


async def _actions(app: Any, feedback_id: str) -> list[tuple[str, str]]:
    async with app.state.sessionmaker() as session:
        rows = await session.execute(
            select(AuditEvent.action, AuditEvent.org)
            .where(AuditEvent.record_id == uuid.UUID(feedback_id))
            .order_by(AuditEvent.at, AuditEvent.action)
        )
        return [(r.action, r.org) for r in rows]


async def test_a_cqc_feedback_about_lgsco_is_acknowledged_and_answered_and_cqc_sees_it(
    app,
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    lgsco_leader: Key,
) -> None:
    feedback_id = await _feedback(client, cqc_agent)

    # LGSCO's advisers and team leaders see it in their incoming list; CQC's is outgoing.
    for key in (lgsco_agent, lgsco_leader):
        incoming = await client.get("/v1/feedback?direction=incoming", headers=key.headers)
        assert [f["id"] for f in incoming.json()["items"]] == [feedback_id]
    mine = await client.get("/v1/feedback?direction=incoming", headers=cqc_agent.headers)
    assert mine.json()["items"] == []
    assert_problem(
        await client.get("/v1/feedback", headers=cqc_agent.headers), 403, "insufficient_role"
    )

    clock.advance(60)
    acked = await _post(client, lgsco_leader, feedback_id, "acknowledge")
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged" and acked.json()["acknowledged_at"]
    again = await _post(client, lgsco_agent, feedback_id, "acknowledge")
    assert_problem(again, 409, "feedback_already_acknowledged")

    clock.advance(3600)
    answered = await _post(client, lgsco_leader, feedback_id, "response", ANSWER)
    assert answered.status_code == 200, answered.text
    assert answered.json()["state"] == "responded"

    seen = await client.get(f"/v1/feedback/{feedback_id}", headers=cqc_agent.headers)
    assert seen.json()["state"] == "responded"
    assert seen.json()["remedial_action"] == "Refreshed the fees script\nwith the team."
    assert seen.json()["training_issue"] is True
    assert seen.json()["responded_at"] > seen.json()["acknowledged_at"]

    # Closed: nothing changes again.
    for action, body in (("acknowledge", None), ("response", ANSWER)):
        assert_problem(
            await _post(client, lgsco_agent, feedback_id, action, body), 409, "feedback_closed"
        )
    assert await _actions(app, feedback_id) == [
        ("create", "cqc"),
        ("acknowledge", "lgsco"),
        ("respond", "lgsco"),
    ]
    closed = await client.get(
        "/v1/feedback?direction=incoming&state=responded", headers=lgsco_agent.headers
    )
    assert [f["id"] for f in closed.json()["items"]] == [feedback_id]


async def test_a_response_without_acknowledging_first_acknowledges_too(
    app, client: httpx.AsyncClient, cqc_agent: Key, lgsco_agent: Key
) -> None:
    feedback_id = await _feedback(client, cqc_agent)
    answered = await _post(
        client, lgsco_agent, feedback_id, "response", {**ANSWER, "training_issue": False}
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["acknowledged_at"] == answered.json()["responded_at"]
    assert answered.json()["training_issue"] is False
    assert sorted(a for a, _ in await _actions(app, feedback_id)) == [
        "acknowledge",
        "create",
        "respond",
    ]


async def test_the_sender_may_not_answer_its_own_and_other_bodies_are_not_told_it_exists(
    client: httpx.AsyncClient, cqc_agent: Key, cqc_leader: Key, key_factory: Keys
) -> None:
    feedback_id = await _feedback(client, cqc_agent)
    for action, body in (("acknowledge", None), ("response", ANSWER)):
        refused = await _post(client, cqc_leader, feedback_id, action, body)
        assert_problem(refused, 403, "feedback_receiving_body_only")
    phso = await key_factory.make("phso", "team_leader", "phso")
    assert_problem(
        await client.get(f"/v1/feedback/{feedback_id}", headers=phso.headers), 404, "not_found"
    )
    for action, body in (("acknowledge", None), ("response", ANSWER)):
        assert_problem(await _post(client, phso, feedback_id, action, body), 404, "not_found")
    listed = await client.get("/v1/feedback?direction=incoming", headers=phso.headers)
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"training_issue": True}, "validation_error"),
        ({**ANSWER, "remedial_action": "   "}, "blank"),
        ({**ANSWER, "remedial_action": "line\rbreak"}, "invalid_characters"),
        ({**ANSWER, "remedial_action": "x" * 4001}, "validation_error"),
        ({"remedial_action": "Done."}, "validation_error"),
    ],
)
async def test_a_bad_response_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, cqc_agent: Key, lgsco_agent: Key, body: dict[str, Any], code: str
) -> None:
    feedback_id = await _feedback(client, cqc_agent)
    response = await _post(client, lgsco_agent, feedback_id, "response", body)
    assert response.status_code == 422, response.text
    codes = {e["code"] for e in response.json().get("errors", [])} | {response.json()["code"]}
    assert code in codes
    seen = await client.get(f"/v1/feedback/{feedback_id}", headers=lgsco_agent.headers)
    assert seen.json()["state"] == "submitted"


async def test_two_team_members_acknowledging_at_once_one_wins(
    app, client: httpx.AsyncClient, cqc_agent: Key, key_factory: Keys
) -> None:
    feedback_id = await _feedback(client, cqc_agent)
    members = [await key_factory.make("lgsco", "agent", f"lgsco desk {n}") for n in range(4)]
    responses = await asyncio.gather(
        *(_post(client, k, feedback_id, "acknowledge") for k in members)
    )
    assert [r.status_code for r in responses].count(200) == 1, [r.text for r in responses]
    for lost in (r for r in responses if r.status_code != 200):
        assert_problem(lost, 409, "feedback_already_acknowledged")
    async with app.state.sessionmaker() as session:
        acks = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.record_id == uuid.UUID(feedback_id), AuditEvent.action == "acknowledge"
            )
        )
    assert acks == 1


async def test_an_answer_is_idempotent_by_key(
    client: httpx.AsyncClient, cqc_agent: Key, lgsco_agent: Key
) -> None:
    feedback_id = await _feedback(client, cqc_agent)
    url = f"/v1/feedback/{feedback_id}/response"
    headers = {**lgsco_agent.headers, "Idempotency-Key": "answer-1"}
    first = await client.post(url, json=ANSWER, headers=headers)
    again = await client.post(url, json=ANSWER, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("idempotent-replayed") == "true"
    assert first.json() == again.json()
