"""Team leaders page through their body's call back requests by month and delivery status."""

from datetime import UTC, datetime

from app.core.clock import FixedClock
from tests.conftest import Key
from tests.helpers import assert_problem, failed_transfer


async def _callback_at(client, clock: FixedClock, key: Key, moment: datetime) -> str:
    clock.set(moment)
    return str((await failed_transfer(client, key, clock.now()))["callback_request_id"])


async def test_months_are_uk_calendar_months(
    client, clock: FixedClock, cqc_agent: Key, cqc_leader: Key
) -> None:
    # 23:30 UTC on 31 May is 00:30 on 1 June in London (summer time).
    june = await _callback_at(client, clock, cqc_agent, datetime(2026, 5, 31, 23, 30, tzinfo=UTC))
    may = await _callback_at(client, clock, cqc_agent, datetime(2026, 5, 31, 22, 30, tzinfo=UTC))

    def ids(response) -> list[str]:  # type: ignore[no-untyped-def]
        return [item["id"] for item in response.json()["items"]]

    assert ids(await client.get("/v1/callbacks?month=2026-06", headers=cqc_leader.headers)) == [
        june
    ]
    assert ids(await client.get("/v1/callbacks?month=2026-05", headers=cqc_leader.headers)) == [may]
    pending = await client.get("/v1/callbacks?status=pending", headers=cqc_leader.headers)
    assert set(ids(pending)) == {june, may}
    sent = await client.get("/v1/callbacks?status=sent", headers=cqc_leader.headers)
    assert ids(sent) == []


async def test_pages_are_stable_and_complete(
    client, clock: FixedClock, cqc_agent: Key, cqc_leader: Key
) -> None:
    made = [
        await _callback_at(client, clock, cqc_agent, datetime(2026, 11, 2, 9, i, tzinfo=UTC))
        for i in range(5)
    ]
    seen: list[str] = []
    url = "/v1/callbacks?limit=2"
    while True:
        page = (await client.get(url, headers=cqc_leader.headers)).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        url = f"/v1/callbacks?limit=2&cursor={page['next_cursor']}"
    assert seen == list(reversed(made))  # newest first, each once


async def test_bad_list_parameters_are_problems(client, cqc_leader: Key) -> None:
    for query, code in [
        ("month=2026-13", "invalid_month"),
        ("month=November", "invalid_month"),
        ("limit=101", "validation_error"),
        ("limit=0", "validation_error"),
        ("status=lost", "validation_error"),
        ("cursor=not-a-cursor", "invalid_cursor"),
    ]:
        response = await client.get(f"/v1/callbacks?{query}", headers=cqc_leader.headers)
        assert_problem(response, 422, code)
