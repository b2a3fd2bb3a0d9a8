"""Every contact counted (issue 16): a caller who declines or hangs up, a call answered after
the wait limit, a transfer nobody finished, contact reasons, and the lists behind the figures."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.core.clock import FixedClock
from app.core.settings import Settings
from app.transfers.jobs import close_forgotten_transfers, no_outcome_job
from tests.conftest import Key
from tests.helpers import assert_problem, failure, iso, to_cqc, to_lgsco

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths


async def start(client, key: Key, body: dict) -> dict:
    response = await client.post("/v1/transfers", json=body, headers=key.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def _audit(app, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    async with app.state.sessionmaker() as session:
        query = select(AuditEvent).where(AuditEvent.action == action)
        return list((await session.scalars(query)).all())


# --- declined and hung up ---------------------------------------------------------------


async def test_a_caller_who_declines_needs_no_permission_and_nothing_is_shared(
    client, clock: FixedClock, lgsco_agent: Key
) -> None:
    # LGSCO -> CQC without a reference: no permission was recorded, none is needed.
    transfer = await start(client, lgsco_agent, to_cqc())
    clock.advance(5)
    declined = await client.post(
        f"/v1/transfers/{transfer['id']}/declined", json={}, headers=lgsco_agent.headers
    )
    assert declined.status_code == 200, declined.text
    body = declined.json()
    assert body["status"] == "declined"
    assert body["outcome_at"] == iso(clock.now()).replace("+00:00", "Z")
    assert body["callback_request_id"] is None and body["permission_to_share_at"] is None
    assert "did not want" in body["next_step"]
    again = await client.post(
        f"/v1/transfers/{transfer['id']}/hung-up", json={}, headers=lgsco_agent.headers
    )
    assert_problem(again, 409, "transfer_not_waiting")


async def test_a_caller_who_hangs_up_while_waiting_past_the_threshold(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    transfer = await start(client, cqc_agent, to_lgsco(clock.now()))
    url = f"/v1/transfers/{transfer['id']}/hung-up"
    hung_up_at = clock.now() + timedelta(seconds=75)
    clock.advance(90)
    future = await client.post(
        url, json={"hung_up_at": iso(clock.now() + timedelta(hours=1))}, headers=cqc_agent.headers
    )
    assert_problem(future, 422, "timestamp_in_future")
    early = await client.post(
        url,
        json={"hung_up_at": iso(clock.now() - timedelta(hours=1))},
        headers=cqc_agent.headers,
    )
    assert_problem(early, 422, "timestamp_out_of_order")
    ok = await client.post(url, json={"hung_up_at": iso(hung_up_at)}, headers=cqc_agent.headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "caller_hung_up"
    assert ok.json()["must_request_callback"] is False
    # Ended: it cannot become connected, nor fail into a call back.
    connected = await client.post(
        f"/v1/transfers/{transfer['id']}/connected", json={}, headers=cqc_agent.headers
    )
    assert_problem(connected, 409, "transfer_not_waiting")


async def test_the_one_request_outcome_takes_declined_and_hung_up(
    client, clock: FixedClock, lgsco_agent: Key
) -> None:
    started = clock.now() - timedelta(seconds=40)
    declined = await start(
        client,
        lgsco_agent,
        to_cqc(wait_started_at=iso(started), outcome={"status": "declined"}),
    )
    assert declined["status"] == "declined"
    hung_up = await start(
        client,
        lgsco_agent,
        to_cqc(
            wait_started_at=iso(started),
            outcome={
                "status": "caller_hung_up",
                "hung_up_at": iso(started + timedelta(seconds=35)),
            },
        ),
    )
    assert hung_up["status"] == "caller_hung_up"
    assert hung_up["outcome_at"] == iso(started + timedelta(seconds=35)).replace("+00:00", "Z")
    before = await client.post(
        "/v1/transfers",
        json=to_cqc(
            wait_started_at=iso(started),
            outcome={"status": "declined", "declined_at": iso(started - timedelta(seconds=1))},
        ),
        headers=lgsco_agent.headers,
    )
    assert_problem(before, 422, "timestamp_out_of_order")


# --- no outcome recorded -------------------------------------------------------------------


async def test_a_forgotten_transfer_is_closed_and_its_true_outcome_replaces_it_that_day(
    app, client, settings: Settings, clock: FixedClock, cqc_agent: Key, cqc_leader: Key
) -> None:
    forgotten = await start(client, cqc_agent, to_lgsco(clock.now()))
    answered = await start(client, cqc_agent, to_lgsco(clock.now()))
    limit = settings.no_outcome_after_seconds
    assert limit == 7200
    sessionmaker = app.state.sessionmaker

    clock.advance(60 + limit)  # exactly the limit past the threshold: not yet
    assert await close_forgotten_transfers(sessionmaker, limit, clock.now()) == 0
    clock.advance(1)
    job = no_outcome_job(sessionmaker, settings)  # what app.wiring hands the worker
    assert await job.run_if_due(clock.now()) == 2
    assert await job.run_if_due(clock.now()) is None  # once a minute at most

    url = f"/v1/transfers/{forgotten['id']}"
    state = (await client.get(url, headers=cqc_agent.headers)).json()
    assert state["status"] == "no_outcome_recorded"
    assert state["outcome_at"] == iso(clock.now()).replace("+00:00", "Z")
    assert state["must_request_callback"] is False
    closed = await _audit(app, "no_outcome")
    assert {(e.actor, str(e.record_id)) for e in closed} == {
        ("system", forgotten["id"]),
        ("system", answered["id"]),
    }
    listed = await client.get(
        "/v1/transfers", params={"outcome": "no_outcome_recorded"}, headers=cqc_leader.headers
    )
    assert len(listed.json()["items"]) == 2

    # Later the same UK day the adviser records what really happened: it replaces it.
    clock.advance(3600)
    connected_at = iso(clock.now() - timedelta(seconds=3600 + limit))
    replaced = await client.post(
        f"/v1/transfers/{answered['id']}/connected",
        json={"connected_at": connected_at},
        headers=cqc_agent.headers,
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["status"] == "connected"
    assert replaced.json()["answered_after_threshold"] is True
    [event] = await _audit(app, "replace_outcome")
    assert (event.actor, str(event.record_id)) == ("key", answered["id"])

    # The next UK day it is too late.
    clock.advance(24 * 3600)
    late = await client.post(f"{url}/declined", json={}, headers=cqc_agent.headers)
    assert_problem(late, 409, "outcome_too_late")


async def test_the_wiring_hands_the_worker_the_no_outcome_job(
    app, settings: Settings, clock: FixedClock
) -> None:
    from app.wiring import outbox_worker

    the_worker = outbox_worker(app.state.sessionmaker, settings, app.state.routes, clock)
    assert "no_outcome" in [job.name for job in the_worker.jobs]


# --- contact reasons -----------------------------------------------------------------------


async def test_contact_reasons_come_from_the_receiving_bodys_list(
    client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    table = (await client.get("/v1/routes", headers=cqc_agent.headers)).json()
    reasons = {(r["from_org"], r["to_org"]): r["contact_reasons"] for r in table["routes"]}
    assert list(reasons[("cqc", "lgsco")]) == [
        "poor_quality_care",
        "fees_and_charges",
        "poor_complaint_handling",
        "delay",
        "assessments_of_need",
        "safeguarding",
        "outside_remit",
    ]
    assert reasons[("lgsco", "cqc")] == {
        "mental_health": "Mental health",
        "other_concern": "Other concern",
    }

    transfer = await start(client, cqc_agent, to_lgsco(clock.now(), contact_reason="delay"))
    assert (transfer["contact_reason"], transfer["contact_reason_label"]) == ("delay", "Delay")
    wrong = await client.post(
        "/v1/transfers",
        json=to_cqc(contact_reason="delay"),  # LGSCO's reason, not CQC's
        headers=lgsco_agent.headers,
    )
    assert_problem(wrong, 422, "unknown_contact_reason")

    signpost = await client.post(
        "/v1/signposts",
        json={"to_org": "cqc", "contact_reason": "mental_health"},
        headers=lgsco_agent.headers,
    )
    assert signpost.status_code == 201, signpost.text
    assert signpost.json()["contact_reason"] == "mental_health"
    bad = await client.post(
        "/v1/signposts", json={"to_org": "cqc", "contact_reason": "x"}, headers=lgsco_agent.headers
    )
    assert_problem(bad, 422, "unknown_contact_reason")


# --- the records behind a figure -----------------------------------------------------------


async def test_team_leaders_list_their_bodys_transfers_by_outcome(
    client, clock: FixedClock, cqc_agent: Key, cqc_leader: Key, lgsco_agent: Key, lgsco_leader: Key
) -> None:
    ids: dict[str, str] = {}
    for outcome in ("connected", "late", "declined", "busy"):
        transfer = await start(
            client, cqc_agent, to_lgsco(clock.now(), contact_reason="safeguarding")
        )
        url = f"/v1/transfers/{transfer['id']}"
        clock.advance(70 if outcome == "late" else 10)
        if outcome in ("connected", "late"):
            await client.post(f"{url}/connected", json={}, headers=cqc_agent.headers)
        elif outcome == "declined":
            await client.post(f"{url}/declined", json={}, headers=cqc_agent.headers)
        else:
            await client.post(
                f"{url}/failed", json=failure("high_call_volume"), headers=cqc_agent.headers
            )
        ids[outcome] = transfer["id"]
    await start(client, lgsco_agent, to_cqc())  # LGSCO's: never in CQC's lists

    async def listed(key: Key, **params: str) -> list[str]:
        response = await client.get("/v1/transfers", params=params, headers=key.headers)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await listed(cqc_leader, outcome="connected_within_threshold") == [ids["connected"]]
    assert await listed(cqc_leader, outcome="connected_after_threshold") == [ids["late"]]
    assert await listed(cqc_leader, outcome="callback_high_call_volume") == [ids["busy"]]
    assert await listed(cqc_leader, status="declined") == [ids["declined"]]
    assert len(await listed(cqc_leader, month="2026-11", to_org="lgsco")) == 4
    assert await listed(cqc_leader, month="2026-10") == []
    assert len(await listed(cqc_leader, contact_reason="safeguarding")) == 4
    assert len(await listed(lgsco_leader)) == 1

    # Keyset pages, newest first, none twice.
    first = (
        await client.get("/v1/transfers", params={"limit": 3}, headers=cqc_leader.headers)
    ).json()
    second = (
        await client.get(
            "/v1/transfers",
            params={"limit": 3, "cursor": first["next_cursor"]},
            headers=cqc_leader.headers,
        )
    ).json()
    paged = [i["id"] for i in first["items"] + second["items"]]
    assert paged == [ids[o] for o in ("busy", "declined", "late", "connected")]
    assert second["next_cursor"] is None
    # No caller details in the list.
    assert "caller" not in first["items"][0]

    for params, code in (
        ({"status": "lost"}, "unknown_status"),
        ({"outcome": "x"}, "unknown_outcome"),
    ):
        refused = await client.get("/v1/transfers", params=params, headers=cqc_leader.headers)
        assert_problem(refused, 422, code)
    agent = await client.get("/v1/transfers", headers=cqc_agent.headers)
    assert_problem(agent, 403, "insufficient_role")


async def test_team_leaders_list_their_bodys_signposts(
    client, cqc_agent: Key, cqc_leader: Key, lgsco_agent: Key
) -> None:
    for reason in ("delay", None):
        body = {"to_org": "lgsco", **({"contact_reason": reason} if reason else {})}
        assert (await client.post("/v1/signposts", json=body, headers=cqc_agent.headers)).is_success
    await client.post("/v1/signposts", json={"to_org": "cqc"}, headers=lgsco_agent.headers)
    every = await client.get("/v1/signposts", headers=cqc_leader.headers)
    assert every.status_code == 200, every.text
    assert len(every.json()["items"]) == 2
    delay = await client.get(
        "/v1/signposts",
        params={"contact_reason": "delay", "month": "2026-11"},
        headers=cqc_leader.headers,
    )
    assert [i["contact_reason"] for i in delay.json()["items"]] == ["delay"]
    assert_problem(
        await client.get("/v1/signposts", headers=cqc_agent.headers), 403, "insufficient_role"
    )


async def test_each_report_figure_has_a_list_of_exactly_that_many_records(
    client,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    lgsco_leader: Key,
) -> None:
    from tests.test_report_api import OCT, Contacts, record_october

    await record_october(Contacts(client, clock), cqc_agent, lgsco_agent)
    clock.set(datetime(2026, 11, 5, 9, tzinfo=UTC))
    report = (
        await client.get(f"/v1/reports/contact-volumes/{OCT}", headers=cqc_leader.headers)
    ).json()
    lists = {
        "warm_transfers_connected": ("/v1/transfers", {"status": "connected"}),
        "callbacks_wait_threshold_exceeded": (
            "/v1/transfers",
            {"outcome": "callback_wait_threshold_exceeded"},
        ),
        "callbacks_high_call_volume": ("/v1/transfers", {"outcome": "callback_high_call_volume"}),
        "callback_requests": ("/v1/transfers", {"status": "failed"}),
        "signposts": ("/v1/signposts", {}),
    }
    leaders = {"cqc": cqc_leader, "lgsco": lgsco_leader}
    for direction in report["directions"]:
        leader = leaders[direction["from_org"]]
        for measure, (path, params) in lists.items():
            for month, figures in (
                (OCT, direction["this_month"]),
                ("2026-09", direction["previous_month"]),
            ):
                query = {**params, "month": month, "to_org": direction["to_org"], "limit": 100}
                page = await client.get(path, params=query, headers=leader.headers)
                assert len(page.json()["items"]) == figures[measure], (direction, measure, month)
