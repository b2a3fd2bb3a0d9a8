"""A call back request's life: the receiving body acknowledges, attempts and closes it, the
sending body sees each step and may withdraw it, and no other body sees any of it."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.callbacks.models import CallbackAttempt
from app.core.clock import FixedClock
from tests.conftest import Key, Keys
from tests.helpers import assert_problem, count, failed_transfer, iso

# START (tests/conftest.py) is Tuesday 10 November 2026, 10:00 UTC (10:00 in London): LGSCO
# opens 10:00-16:00, so 4 working hours is 14:00 that day and 16 is Thursday 14:00.
FIRST_DUE = "2026-11-10T14:00:00Z"
CLOSE_DUE = "2026-11-12T14:00:00Z"


async def _request(client: httpx.AsyncClient, cqc: Key, clock: FixedClock) -> str:
    return str((await failed_transfer(client, cqc, clock.now()))["callback_request_id"])


async def _post(
    client: httpx.AsyncClient,
    key: Key,
    callback_id: str,
    action: str,
    body: dict[str, Any] | None = None,
    **headers: str,
) -> httpx.Response:
    return await client.post(
        f"/v1/callbacks/{callback_id}/{action}",
        json=body,
        headers={**key.headers, **headers},
    )


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert response.headers["etag"] == f'"{body["version"]}"'
    return body


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_the_story_acknowledged_no_answer_then_reached(
    app, client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    callback_id = await _request(client, cqc_agent, clock)

    made = _ok(await client.get(f"/v1/callbacks/{callback_id}", headers=cqc_agent.headers))
    assert made["state"] == "requested" and made["outcome"] is None and made["version"] == 1
    assert _utc(made["first_attempt_due_at"]) == _utc(FIRST_DUE)
    assert _utc(made["close_due_at"]) == _utc(CLOSE_DUE)
    assert made["attempts"] == [] and made["overdue"] is False

    # LGSCO sees it addressed to them, caller's details included.
    incoming = await client.get("/v1/callbacks?direction=incoming", headers=lgsco_agent.headers)
    assert incoming.status_code == 200, incoming.text
    [item] = incoming.json()["items"]
    assert item["id"] == callback_id and item["caller"]["name"] == "Ada Lovelace"

    clock.advance(600)
    acked = _ok(await _post(client, lgsco_agent, callback_id, "acknowledge"))
    assert acked["state"] == "acknowledged" and acked["version"] == 2
    assert _utc(acked["acknowledged_at"]) == clock.now()

    clock.advance(180)
    first = _ok(await _post(client, lgsco_agent, callback_id, "attempts", {"result": "no_answer"}))
    assert first["state"] == "acknowledged"
    assert [a["result"] for a in first["attempts"]] == ["no_answer"]

    clock.advance(4 * 3600)
    reached = _ok(
        await _post(
            client,
            lgsco_agent,
            callback_id,
            "attempts",
            {"result": "reached", "attempted_at": iso(clock.now() - timedelta(minutes=5))},
        )
    )
    assert reached["state"] == "closed" and reached["outcome"] == "reached"
    assert _utc(reached["closed_at"]) == clock.now()

    # The CQC adviser sees each step.
    seen = _ok(await client.get(f"/v1/callbacks/{callback_id}", headers=cqc_agent.headers))
    assert seen["state"] == "closed" and seen["outcome"] == "reached"
    assert [a["result"] for a in seen["attempts"]] == ["no_answer", "reached"]
    assert seen["acknowledged_at"] == acked["acknowledged_at"]

    # A closed request never changes again.
    again = await _post(client, lgsco_agent, callback_id, "attempts", {"result": "busy"})
    assert_problem(again, 409, "callback_closed")
    assert_problem(await _post(client, cqc_agent, callback_id, "withdraw"), 409, "callback_closed")

    async with app.state.sessionmaker() as session:
        actions = list(
            await session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.record_id == _uuid(callback_id))
                .order_by(AuditEvent.at, AuditEvent.action)
            )
        )
    assert actions == ["create", "acknowledge", "attempt", "attempt", "close"]


def _uuid(text: str):  # type: ignore[no-untyped-def]
    import uuid

    return uuid.UUID(text)


async def test_an_attempt_acknowledges_and_the_last_unsuccessful_one_closes_unreachable(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    callback_id = await _request(client, cqc_agent, clock)
    first = _ok(await _post(client, lgsco_agent, callback_id, "attempts", {"result": "busy"}))
    assert first["state"] == "acknowledged" and first["acknowledged_at"] is not None
    second = await _post(client, lgsco_agent, callback_id, "attempts", {"result": "no_answer"})
    assert _ok(second)["state"] == "acknowledged"
    # The route's callback_max_attempts (3 by default) unsuccessful attempts close it.
    third = _ok(
        await _post(client, lgsco_agent, callback_id, "attempts", {"result": "voicemail_left"})
    )
    assert third["state"] == "closed" and third["outcome"] == "unreachable"
    assert len(third["attempts"]) == 3


async def test_a_wrong_number_closes_unreachable_at_once(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    callback_id = await _request(client, cqc_agent, clock)
    wrong = _ok(
        await _post(client, lgsco_agent, callback_id, "attempts", {"result": "wrong_number"})
    )
    assert wrong["state"] == "closed" and wrong["outcome"] == "unreachable"


async def test_returned_with_a_reason_and_withdrawn_by_the_sender(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    returned_id = await _request(client, cqc_agent, clock)
    returned = _ok(
        await _post(client, lgsco_agent, returned_id, "return", {"reason": "not_our_remit"})
    )
    assert returned["outcome"] == "returned" and returned["return_reason"] == "not_our_remit"

    withdrawn_id = await _request(client, cqc_agent, clock)
    withdrawn = _ok(await _post(client, cqc_agent, withdrawn_id, "withdraw"))
    assert withdrawn["outcome"] == "withdrawn" and withdrawn["state"] == "closed"

    bad = await _post(
        client, lgsco_agent, await _request(client, cqc_agent, clock), "return", {"reason": "bored"}
    )
    assert_problem(bad, 422, "validation_error")


async def test_each_body_does_only_its_own_part(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    callback_id = await _request(client, cqc_agent, clock)
    for action, body in [
        ("acknowledge", None),
        ("attempts", {"result": "reached"}),
        ("return", {"reason": "duplicate"}),
    ]:
        refused = await _post(client, cqc_agent, callback_id, action, body)
        assert_problem(refused, 403, "callback_receiving_body_only")
    refused = await _post(client, lgsco_agent, callback_id, "withdraw")
    assert_problem(refused, 403, "callback_sending_body_only")
    # None of that changed it.
    still = _ok(await client.get(f"/v1/callbacks/{callback_id}", headers=lgsco_agent.headers))
    assert still["version"] == 1


async def test_already_acknowledged_says_who_and_when(
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    key_factory: Keys,
) -> None:
    callback_id = await _request(client, cqc_agent, clock)
    _ok(await _post(client, lgsco_agent, callback_id, "acknowledge"))
    other = await key_factory.make("lgsco", "agent", "lgsco desk 2")
    clock.advance(60)
    second = assert_problem(
        await _post(client, other, callback_id, "acknowledge"), 409, "callback_already_acknowledged"
    )
    assert second["acknowledged_by"] == {"key_name": "lgsco desk 1", "org": "lgsco"}
    assert _utc(second["acknowledged_at"]) == clock.now() - timedelta(seconds=60)


async def test_a_stale_if_match_is_refused(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    callback_id = await _request(client, cqc_agent, clock)
    read = await client.get(f"/v1/callbacks/{callback_id}", headers=lgsco_agent.headers)
    tag = read.headers["etag"]
    assert tag == '"1"'
    acked = await _post(client, lgsco_agent, callback_id, "acknowledge", **{"If-Match": tag})
    assert _ok(acked)["version"] == 2
    stale = await _post(
        client, lgsco_agent, callback_id, "attempts", {"result": "busy"}, **{"If-Match": tag}
    )
    body = assert_problem(stale, 412, "precondition_failed")
    assert body["etag"] == '"2"'
    fresh = await _post(
        client, lgsco_agent, callback_id, "attempts", {"result": "busy"}, **{"If-Match": 'W/"2"'}
    )
    assert _ok(fresh)["version"] == 3
    star = await _post(
        client, lgsco_agent, callback_id, "return", {"reason": "duplicate"}, **{"If-Match": "*"}
    )
    assert _ok(star)["outcome"] == "returned"


async def test_attempt_times_are_checked(
    app, client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    callback_id = await _request(client, cqc_agent, clock)
    for attempted_at, status, code in [
        (clock.now() + timedelta(minutes=10), 422, "timestamp_in_future"),
        (clock.now() - timedelta(minutes=1), 422, "timestamp_out_of_order"),
        ("2026-11-10T10:00:00", 422, "naive_datetime"),
    ]:
        when = attempted_at if isinstance(attempted_at, str) else iso(attempted_at)
        refused = await _post(
            client, lgsco_agent, callback_id, "attempts", {"result": "busy", "attempted_at": when}
        )
        assert_problem(refused, status, code)
    bad = await _post(client, lgsco_agent, callback_id, "attempts", {"result": "shouted"})
    assert_problem(bad, 422, "validation_error")
    assert await count(app, CallbackAttempt) == 0


async def test_another_body_sees_none_of_it(
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    key_factory: Keys,
) -> None:
    # A second CQC request, to check the incoming list of CQC holds nothing sent by CQC.
    callback_id = await _request(client, cqc_agent, clock)
    cqc_incoming = await client.get("/v1/callbacks?direction=incoming", headers=cqc_agent.headers)
    assert cqc_incoming.json()["items"] == []
    lgsco_leader = await key_factory.make("lgsco", "team_leader")
    lgsco_outgoing = await client.get("/v1/callbacks", headers=lgsco_leader.headers)
    assert lgsco_outgoing.json()["items"] == []
    # The outgoing list stays for team leaders, as before.
    agent_outgoing = await client.get("/v1/callbacks", headers=cqc_agent.headers)
    assert_problem(agent_outgoing, 403, "insufficient_role")
    # A third body's keys: tests/test_lifecycle_third_body.py; here the unknown id.
    assert_problem(
        await _post(client, lgsco_agent, "00000000-0000-4000-8000-000000000000", "acknowledge"),
        404,
        "not_found",
    )
    assert callback_id


async def test_the_incoming_list_most_urgent_first_with_filters(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    # Made on Tuesday 10:00, Monday 10:00 and Tuesday 09:00: due Thursday, Wednesday ... first.
    tuesday = await _request(client, cqc_agent, clock)
    clock.set(datetime(2026, 11, 9, 10, 0, tzinfo=UTC))
    monday = await _request(client, cqc_agent, clock)
    clock.set(datetime(2026, 11, 10, 9, 0, tzinfo=UTC))  # before LGSCO opens: due as at 10:00
    early = await _request(client, cqc_agent, clock)
    clock.set(datetime(2026, 11, 10, 15, 0, tzinfo=UTC))

    async def ids(query: str) -> list[str]:
        response = await client.get(f"/v1/callbacks?{query}", headers=lgsco_agent.headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    everything = await ids("direction=incoming")
    assert everything[0] == monday and set(everything[1:]) == {tuesday, early}
    # Paged two at a time: the same order, each once.
    seen: list[str] = []
    url = "direction=incoming&limit=2"
    while True:
        page = (await client.get(f"/v1/callbacks?{url}", headers=lgsco_agent.headers)).json()
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"direction=incoming&limit=2&cursor={page['next_cursor']}"
    assert seen == everything

    # At 15:00 on Tuesday all three are past their first-attempt target with no attempt.
    assert set(await ids("direction=incoming&overdue=true")) == {monday, tuesday, early}
    _ok(await _post(client, lgsco_agent, tuesday, "attempts", {"result": "busy"}))
    assert set(await ids("direction=incoming&overdue=true")) == {monday, early}
    assert await ids("direction=incoming&overdue=false") == [tuesday]
    assert await ids("direction=incoming&state=acknowledged") == [tuesday]
    assert set(await ids("direction=incoming&state=requested")) == {monday, early}
    assert await ids("direction=incoming&state=closed") == []
    assert len(await ids("direction=incoming&month=2026-11")) == 3
    assert await ids("direction=incoming&month=2026-10") == []
    assert_problem(
        await client.get("/v1/callbacks?direction=sideways", headers=lgsco_agent.headers),
        422,
        "validation_error",
    )


async def test_overdue_when_the_clock_passes_its_due_time(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    callback_id = await _request(client, cqc_agent, clock)
    url = f"/v1/callbacks/{callback_id}"
    clock.set(_utc(FIRST_DUE))
    assert _ok(await client.get(url, headers=lgsco_agent.headers))["overdue"] is False
    clock.advance(1)
    assert _ok(await client.get(url, headers=lgsco_agent.headers))["overdue"] is True
    _ok(await _post(client, lgsco_agent, callback_id, "attempts", {"result": "busy"}))
    assert _ok(await client.get(url, headers=lgsco_agent.headers))["overdue"] is False
    clock.set(_utc(CLOSE_DUE) + timedelta(seconds=1))
    assert _ok(await client.get(url, headers=cqc_agent.headers))["overdue"] is True
    _ok(await _post(client, cqc_agent, callback_id, "withdraw"))
    assert _ok(await client.get(url, headers=cqc_agent.headers))["overdue"] is False


@pytest.mark.parametrize("action", ["acknowledge", "attempts", "return", "withdraw"])
async def test_a_retry_with_the_same_idempotency_key_changes_nothing_twice(
    app, client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, action: str
) -> None:
    callback_id = await _request(client, cqc_agent, clock)
    key = cqc_agent if action == "withdraw" else lgsco_agent
    body = {"attempts": {"result": "busy"}, "return": {"reason": "duplicate"}}.get(action)
    first = await _post(client, key, callback_id, action, body, **{"Idempotency-Key": "k-1"})
    again = await _post(client, key, callback_id, action, body, **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers.get("idempotent-replayed") == "true"
    assert first.json() == again.json()
    assert await count(app, CallbackAttempt) == (1 if action == "attempts" else 0)


async def test_two_advisers_acknowledging_at_once_one_wins(
    app, client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, key_factory: Keys
) -> None:
    """Real concurrent requests (PostgreSQL: FOR UPDATE makes the losers wait and read the
    winner's change; SQLite: the conditional UPDATE waits for the write lock and finds the
    version moved). Exactly one acknowledgement is stored; the others learn who and when."""
    import asyncio

    callback_id = await _request(client, cqc_agent, clock)
    advisers = [await key_factory.make("lgsco", "agent", f"lgsco desk {n}") for n in range(5)]
    responses = await asyncio.gather(
        *(_post(client, key, callback_id, "acknowledge") for key in advisers)
    )
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1, [r.text for r in responses]
    winner = advisers[responses.index(winners[0])]
    for lost in responses:
        if lost.status_code != 200:
            body = assert_problem(lost, 409, "callback_already_acknowledged")
            assert body["acknowledged_by"]["key_name"] == f"lgsco desk {advisers.index(winner)}"
    async with app.state.sessionmaker() as session:
        acks = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.record_id == _uuid(callback_id), AuditEvent.action == "acknowledge")
        )
    assert acks == 1
    read = _ok(await client.get(f"/v1/callbacks/{callback_id}", headers=cqc_agent.headers))
    assert read["version"] == 2


async def test_attempts_at_once_never_pass_the_route_limit(
    app, client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, key_factory: Keys
) -> None:
    import asyncio

    callback_id = await _request(client, cqc_agent, clock)
    advisers = [await key_factory.make("lgsco", "agent", f"lgsco desk {n}") for n in range(5)]
    responses = await asyncio.gather(
        *(_post(client, key, callback_id, "attempts", {"result": "busy"}) for key in advisers)
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 200, 200, 409, 409], [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
        "callback_closed",
        "concurrent_change",
    }
    assert await count(app, CallbackAttempt) == 3
    read = _ok(await client.get(f"/v1/callbacks/{callback_id}", headers=cqc_agent.headers))
    assert read["outcome"] == "unreachable" and len(read["attempts"]) == 3


async def test_two_changes_from_one_read_one_wins_the_other_is_stale(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    import asyncio

    callback_id = await _request(client, cqc_agent, clock)
    tag = {"If-Match": '"1"'}
    responses = await asyncio.gather(
        _post(client, lgsco_agent, callback_id, "return", {"reason": "duplicate"}, **tag),
        _post(client, cqc_agent, callback_id, "withdraw", **tag),
    )
    assert sorted(r.status_code for r in responses) == [200, 412], [r.text for r in responses]


@pytest.mark.parametrize("state", [None, "acknowledged"])
async def test_the_incoming_list_reads_an_index_in_its_order(
    app, clock: FixedClock, is_postgres: bool, state: str | None
) -> None:
    """The first page costs the same however many requests there are: the index gives the
    rows in the list's order, so no sort of the whole body's requests (PostgreSQL plans)."""
    if not is_postgres:
        pytest.skip("index plans are checked on PostgreSQL")
    from sqlalchemy import text

    from app.callbacks import lifecycle

    statement = lifecycle.list_statement(
        "lgsco",
        direction=lifecycle.Direction.incoming,
        now=clock.now(),
        state=lifecycle.CallbackState(state) if state else None,
        limit=50,
    )
    async with app.state.engine.connect() as connection:
        await connection.execute(text("SET enable_seqscan = off"))
        compiled = statement.compile(
            app.state.engine.sync_engine, compile_kwargs={"literal_binds": True}
        )
        plan = "\n".join(row[0] for row in await connection.execute(text(f"EXPLAIN {compiled}")))
    # Either incoming index gives the order (with a state, the planner may still prefer the
    # one without it on a small table, filtering the state as it reads).
    index = "ix_callback_requests_incoming"
    assert index in plan, plan
    assert "Sort" not in plan, plan
