"""An adviser's warm transfer, under the protocol's wait thresholds (Appendix 2 s.3 and s.5)."""

from datetime import timedelta

import pytest

from app.core.clock import FixedClock
from tests.conftest import Key, Keys
from tests.helpers import CALLER, assert_problem, failure, iso, to_cqc, to_lgsco

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths


async def start(client, key: Key, body: dict) -> dict:
    response = await client.post("/v1/transfers", json=body, headers=key.headers)
    assert response.status_code == 201, response.text
    return response.json()


async def test_cqc_adviser_waits_61_seconds_and_requests_a_call_back(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    transfer = await start(client, cqc_agent, to_lgsco(clock.now()))
    assert transfer["status"] == "waiting"
    assert transfer["dial"] == {"number": "0300 061 0614", "ivr_option": None, "ivr_label": None}
    assert transfer["wait_threshold_seconds"] == 60
    assert transfer["callback_required_after"] == iso(clock.now() + timedelta(seconds=60)).replace(
        "+00:00", "Z"
    )

    clock.advance(61)
    state = (await client.get(f"/v1/transfers/{transfer['id']}", headers=cqc_agent.headers)).json()
    assert state["must_request_callback"] is True
    assert "call back" in state["next_step"]

    failed = await client.post(
        f"/v1/transfers/{transfer['id']}/failed", json=failure(), headers=cqc_agent.headers
    )
    assert failed.status_code == 200, failed.text
    assert failed.json()["status"] == "failed"
    assert failed.json()["failure_reason"] == "wait_threshold_exceeded"

    callback = await client.get(
        f"/v1/callbacks/{failed.json()['callback_request_id']}", headers=cqc_agent.headers
    )
    assert callback.status_code == 200
    body = callback.json()
    assert body["mailbox"] == "intake@lgo.org.uk"
    assert body["from_org"] == "cqc" and body["to_org"] == "lgsco"
    assert body["sender_reference"] == "CQC-1001"
    assert body["caller"] == {
        "name": "Ada Lovelace",
        "contact_number": "+447911123456",
        "provider": "Sunrise Care Home",
    }
    assert body["delivery"]["status"] == "pending"


async def test_lgsco_adviser_waits_31_seconds_and_requests_a_call_back(
    client, clock: FixedClock, lgsco_agent: Key
) -> None:
    transfer = await start(client, lgsco_agent, to_cqc(topic="mental_health"))
    assert transfer["dial"] == {
        "number": "03000 616 161",
        "ivr_option": 1,
        "ivr_label": "Complaints about mental health",
    }
    assert transfer["wait_threshold_seconds"] == 30

    clock.advance(31)
    failed = await client.post(
        f"/v1/transfers/{transfer['id']}/failed",
        json=failure(sender_reference="LG-77/2026", permission_to_share_at=iso(clock.now())),
        headers=lgsco_agent.headers,
    )
    assert failed.status_code == 200, failed.text
    callback = (
        await client.get(
            f"/v1/callbacks/{failed.json()['callback_request_id']}", headers=lgsco_agent.headers
        )
    ).json()
    assert callback["mailbox"] == "concerns@cqc.org.uk"
    assert callback["sender_reference"] == "LG-77/2026"


@pytest.mark.parametrize(
    ("org", "wait"),
    [
        ("cqc", 59),
        ("cqc", 60),  # "longer than 1 minute": exactly a minute still connects
        ("lgsco", 29),
        ("lgsco", 30),  # "exceeds 30 seconds": exactly 30 s still connects
    ],
)
async def test_a_transfer_answered_within_the_threshold_connects(
    client, clock: FixedClock, key_factory: Keys, org: str, wait: int
) -> None:
    key = await key_factory.make(org, "agent")
    payload = to_lgsco(clock.now()) if org == "cqc" else to_cqc()
    transfer = await start(client, key, payload)
    clock.advance(wait)
    connected = await client.post(
        f"/v1/transfers/{transfer['id']}/connected", json={}, headers=key.headers
    )
    assert connected.status_code == 200, connected.text
    assert connected.json()["status"] == "connected"
    assert connected.json()["connected_at"] == iso(clock.now()).replace("+00:00", "Z")
    assert connected.json()["must_request_callback"] is False


async def test_a_call_answered_after_the_threshold_is_still_a_warm_transfer(
    client, clock: FixedClock, lgsco_agent: Key
) -> None:
    transfer = await start(client, lgsco_agent, to_cqc())
    connected_at = clock.now() + timedelta(seconds=31)
    clock.advance(120)
    state = (
        await client.get(f"/v1/transfers/{transfer['id']}", headers=lgsco_agent.headers)
    ).json()
    # The protocol's rule stays visible: the adviser is told to request a call back ...
    assert state["must_request_callback"] is True
    response = await client.post(
        f"/v1/transfers/{transfer['id']}/connected",
        json={"connected_at": iso(connected_at)},
        headers=lgsco_agent.headers,
    )
    # ... but an answer, even a late one, is recorded as what happened.
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "connected"
    assert response.json()["answered_after_threshold"] is True
    assert response.json()["must_request_callback"] is False


async def test_a_transfer_that_failed_into_a_call_back_cannot_become_connected(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    transfer = await start(client, cqc_agent, to_lgsco(clock.now()))
    clock.advance(61)
    url = f"/v1/transfers/{transfer['id']}"
    assert (
        await client.post(f"{url}/failed", json=failure(), headers=cqc_agent.headers)
    ).is_success
    late = await client.post(f"{url}/connected", json={}, headers=cqc_agent.headers)
    assert_problem(late, 409, "transfer_not_waiting")


async def test_waiting_is_not_a_reason_for_a_call_back_before_the_threshold(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    transfer = await start(client, cqc_agent, to_lgsco(clock.now()))
    clock.advance(30)
    early = await client.post(
        f"/v1/transfers/{transfer['id']}/failed", json=failure(), headers=cqc_agent.headers
    )
    assert_problem(early, 409, "wait_threshold_not_reached")
    busy = await client.post(
        f"/v1/transfers/{transfer['id']}/failed",
        json=failure("high_call_volume"),
        headers=cqc_agent.headers,
    )
    assert busy.status_code == 200, busy.text
    assert busy.json()["failure_reason"] == "high_call_volume"


async def test_an_outcome_is_recorded_once(client, clock: FixedClock, cqc_agent: Key) -> None:
    transfer = await start(client, cqc_agent, to_lgsco(clock.now()))
    url = f"/v1/transfers/{transfer['id']}"
    assert (await client.post(f"{url}/connected", json={}, headers=cqc_agent.headers)).is_success
    again = await client.post(f"{url}/connected", json={}, headers=cqc_agent.headers)
    assert_problem(again, 409, "transfer_not_waiting")
    fail = await client.post(
        f"{url}/failed", json=failure("high_call_volume"), headers=cqc_agent.headers
    )
    assert_problem(fail, 409, "transfer_not_waiting")


async def test_a_telephony_integration_records_a_finished_call_in_one_request(
    client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, lgsco_leader: Key
) -> None:
    started = clock.now() - timedelta(seconds=45)
    connected = await start(
        client,
        lgsco_agent,
        to_cqc(
            wait_started_at=iso(started),
            outcome={"status": "connected", "connected_at": iso(started + timedelta(seconds=20))},
        ),
    )
    assert connected["status"] == "connected"

    failed = await start(
        client,
        cqc_agent,
        to_lgsco(
            started - timedelta(seconds=60),
            wait_started_at=iso(started - timedelta(seconds=60)),
            outcome={"status": "failed", **failure()},
        ),
    )
    assert failed["status"] == "failed"
    assert failed["callback_request_id"]

    late = await start(
        client,
        lgsco_agent,
        to_cqc(
            wait_started_at=iso(started),
            outcome={"status": "connected", "connected_at": iso(started + timedelta(seconds=40))},
        ),
    )
    assert late["status"] == "connected" and late["answered_after_threshold"] is True
    assert connected["answered_after_threshold"] is False

    refused = await client.post(
        "/v1/transfers",
        json=to_cqc(
            wait_started_at=iso(started),
            outcome={"status": "failed", **failure(), "failed_at": iso(started)},
        ),
        headers=lgsco_agent.headers,
    )
    assert_problem(refused, 409, "wait_threshold_not_reached")
    # Nothing of the refused request is stored: LGSCO still has no call back requests.
    page = await client.get("/v1/callbacks", headers=lgsco_leader.headers)
    assert page.json()["items"] == []


class TestRouteRules:
    async def test_the_route_must_exist(self, client, cqc_agent: Key) -> None:
        for to_org in ("cqc", "phso", ""):
            response = await client.post(
                "/v1/transfers", json={"to_org": to_org}, headers=cqc_agent.headers
            )
            assert response.status_code == 422
            assert response.json()["code"] in ("no_route", "validation_error")

    async def test_the_sending_body_is_the_keys_never_a_field(
        self, client, clock: FixedClock, cqc_agent: Key
    ) -> None:
        response = await client.post(
            "/v1/transfers",
            json=to_lgsco(clock.now(), from_org="lgsco"),
            headers=cqc_agent.headers,
        )
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["field"] == "from_org"
        assert body["errors"][0]["code"] == "extra_forbidden"

    async def test_towards_cqc_the_topic_picks_the_ivr_option(
        self, client, lgsco_agent: Key
    ) -> None:
        missing = await client.post(
            "/v1/transfers", json={"to_org": "cqc"}, headers=lgsco_agent.headers
        )
        assert_problem(missing, 422, "topic_required")
        unknown = await client.post(
            "/v1/transfers", json=to_cqc(topic="dentistry"), headers=lgsco_agent.headers
        )
        assert_problem(unknown, 422, "unknown_topic")
        other = await start(client, lgsco_agent, to_cqc(topic="other"))
        assert other["dial"]["ivr_option"] == 2

    async def test_towards_lgsco_there_is_no_topic(
        self, client, clock: FixedClock, cqc_agent: Key
    ) -> None:
        response = await client.post(
            "/v1/transfers", json=to_lgsco(clock.now(), topic="other"), headers=cqc_agent.headers
        )
        assert_problem(response, 422, "topic_not_applicable")

    async def test_towards_lgsco_a_case_reference_is_required(
        self, client, clock: FixedClock, cqc_agent: Key
    ) -> None:
        body = to_lgsco(clock.now())
        del body["sender_reference"]
        response = await client.post("/v1/transfers", json=body, headers=cqc_agent.headers)
        assert_problem(response, 422, "sender_reference_required")

    @pytest.mark.parametrize(
        "reference",
        ["", " ", "x" * 33, "22  001 234", "22\u00a0001", "CQC_1", "ref;drop"],
    )
    async def test_a_case_reference_uses_a_safe_alphabet(
        self, client, clock: FixedClock, cqc_agent: Key, reference: str
    ) -> None:
        response = await client.post(
            "/v1/transfers",
            json=to_lgsco(clock.now(), sender_reference=reference),
            headers=cqc_agent.headers,
        )
        body = assert_problem(response, 422, "invalid_reference")
        assert body["errors"][0]["field"] == "sender_reference"

    @pytest.mark.parametrize(
        ("typed", "stored"),
        [
            ("22 001 234", "22 001 234"),  # an LGSCO case reference as it is written
            ("  22 001 234 ", "22 001 234"),
            ("CAS-1 / 2", "CAS-1 / 2"),
            ("x" * 32, "x" * 32),
            ("a b c d e f g h i j k l m n o p", "a b c d e f g h i j k l m n o p"),
        ],
    )
    async def test_a_case_reference_may_have_single_spaces_inside(
        self, client, clock: FixedClock, cqc_agent: Key, typed: str, stored: str
    ) -> None:
        response = await client.post(
            "/v1/transfers",
            json=to_lgsco(clock.now(), sender_reference=typed),
            headers=cqc_agent.headers,
        )
        assert response.status_code == 201, response.text
        assert response.json()["sender_reference"] == stored
        got = await client.get(f"/v1/transfers/{response.json()['id']}", headers=cqc_agent.headers)
        assert got.json()["sender_reference"] == stored

    async def test_towards_cqc_the_reference_may_wait_until_the_call_back(
        self, client, clock: FixedClock, lgsco_agent: Key
    ) -> None:
        transfer = await start(client, lgsco_agent, to_cqc())
        assert transfer["sender_reference"] is None
        clock.advance(31)
        url = f"/v1/transfers/{transfer['id']}/failed"
        no_ref = await client.post(
            url, json=failure(permission_to_share_at=iso(clock.now())), headers=lgsco_agent.headers
        )
        assert_problem(no_ref, 422, "sender_reference_required")
        ok = await client.post(
            url,
            json=failure(sender_reference="LG-1", permission_to_share_at=iso(clock.now())),
            headers=lgsco_agent.headers,
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["sender_reference"] == "LG-1"


class TestPermissionToShare:
    async def test_towards_lgsco_it_is_always_recorded(
        self, client, clock: FixedClock, cqc_agent: Key
    ) -> None:
        body = to_lgsco(clock.now())
        del body["permission_to_share_at"]
        response = await client.post("/v1/transfers", json=body, headers=cqc_agent.headers)
        assert_problem(response, 422, "permission_to_share_required")

    async def test_towards_cqc_it_is_needed_once_a_case_reference_exists(
        self, client, clock: FixedClock, lgsco_agent: Key
    ) -> None:
        await start(client, lgsco_agent, to_cqc())  # no reference, no permission: fine
        response = await client.post(
            "/v1/transfers", json=to_cqc(sender_reference="LG-9"), headers=lgsco_agent.headers
        )
        assert_problem(response, 422, "permission_to_share_required")
        await start(
            client,
            lgsco_agent,
            to_cqc(sender_reference="LG-9", permission_to_share_at=iso(clock.now())),
        )

    async def test_a_call_back_always_needs_it(
        self, client, clock: FixedClock, lgsco_agent: Key
    ) -> None:
        transfer = await start(client, lgsco_agent, to_cqc())  # none needed to transfer
        clock.advance(31)
        url = f"/v1/transfers/{transfer['id']}/failed"
        response = await client.post(
            url, json=failure(sender_reference="LG-2"), headers=lgsco_agent.headers
        )
        assert_problem(response, 422, "permission_to_share_required")
        given = await client.post(
            url,
            json=failure(sender_reference="LG-2", permission_to_share_at=iso(clock.now())),
            headers=lgsco_agent.headers,
        )
        assert given.status_code == 200, given.text

    async def test_it_cannot_be_in_the_future(
        self, client, clock: FixedClock, cqc_agent: Key
    ) -> None:
        within_skew = iso(clock.now() + timedelta(seconds=119))
        await start(client, cqc_agent, to_lgsco(clock.now(), permission_to_share_at=within_skew))
        beyond = iso(clock.now() + timedelta(seconds=121))
        response = await client.post(
            "/v1/transfers",
            json=to_lgsco(clock.now(), permission_to_share_at=beyond),
            headers=cqc_agent.headers,
        )
        assert_problem(response, 422, "permission_to_share_in_future")

    async def test_it_cannot_come_after_the_connection(
        self, client, clock: FixedClock, cqc_agent: Key
    ) -> None:
        transfer = await start(
            client,
            cqc_agent,
            to_lgsco(clock.now(), permission_to_share_at=iso(clock.now() + timedelta(seconds=50))),
        )
        clock.advance(10)
        response = await client.post(
            f"/v1/transfers/{transfer['id']}/connected", json={}, headers=cqc_agent.headers
        )
        assert_problem(response, 422, "permission_to_share_after_sharing")

    @pytest.mark.parametrize("field", ["permission_to_share_at", "wait_started_at"])
    async def test_timestamps_must_carry_a_zone(
        self, client, clock: FixedClock, cqc_agent: Key, field: str
    ) -> None:
        response = await client.post(
            "/v1/transfers",
            json=to_lgsco(clock.now(), **{field: "2026-11-10T09:59:00"}),
            headers=cqc_agent.headers,
        )
        body = assert_problem(response, 422, "naive_datetime")
        assert body["errors"][0]["field"] == field

    async def test_the_wait_cannot_start_in_the_future(
        self, client, clock: FixedClock, cqc_agent: Key
    ) -> None:
        response = await client.post(
            "/v1/transfers",
            json=to_lgsco(clock.now(), wait_started_at=iso(clock.now() + timedelta(minutes=5))),
            headers=cqc_agent.headers,
        )
        assert_problem(response, 422, "timestamp_in_future")

    async def test_an_outcome_cannot_precede_the_wait(
        self, client, clock: FixedClock, cqc_agent: Key
    ) -> None:
        transfer = await start(client, cqc_agent, to_lgsco(clock.now()))
        response = await client.post(
            f"/v1/transfers/{transfer['id']}/connected",
            json={"connected_at": iso(clock.now() - timedelta(seconds=5))},
            headers=cqc_agent.headers,
        )
        assert_problem(response, 422, "timestamp_out_of_order")


class TestCallerDetails:
    async def _failed(self, client, clock: FixedClock, key: Key, caller: dict):  # type: ignore[no-untyped-def]
        transfer = await start(client, key, to_lgsco(clock.now()))
        return await client.post(
            f"/v1/transfers/{transfer['id']}/failed",
            json=failure("high_call_volume", caller=caller),
            headers=key.headers,
        )

    @pytest.mark.parametrize(
        ("number", "stored"),
        [
            ("07911 123456", "+447911123456"),
            ("+44 20 7946 0958", "+442079460958"),
            ("0161 496 0000", "+441614960000"),
            ("+33 1 42 68 53 00", "+33142685300"),
        ],
    )
    async def test_numbers_are_stored_in_e164(
        self, client, clock: FixedClock, cqc_agent: Key, number: str, stored: str
    ) -> None:
        response = await self._failed(
            client, clock, cqc_agent, {**CALLER, "contact_number": number}
        )
        assert response.status_code == 200, response.text
        callback = await client.get(
            f"/v1/callbacks/{response.json()['callback_request_id']}", headers=cqc_agent.headers
        )
        assert callback.json()["caller"]["contact_number"] == stored

    @pytest.mark.parametrize("number", ["12345", "07911 12345", "not a number", "+1 555", ""])
    async def test_invalid_numbers_are_refused(
        self, client, clock: FixedClock, cqc_agent: Key, number: str
    ) -> None:
        response = await self._failed(
            client, clock, cqc_agent, {**CALLER, "contact_number": number}
        )
        assert response.status_code == 422
        assert response.json()["errors"][0]["field"] == "caller.contact_number"

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("name", "Ada\nLovelace"),
            ("name", "Ada\rBcc: x@example.com"),
            ("name", "Ada\u2028Lovelace"),
            ("provider", "Care\u2029Home"),
            ("provider", "Home\x00"),
            ("name", "=?utf-8?q?Ada?="),
        ],
    )
    async def test_control_characters_are_refused_not_stripped(
        self, client, clock: FixedClock, cqc_agent: Key, field: str, value: str
    ) -> None:
        response = await self._failed(client, clock, cqc_agent, {**CALLER, field: value})
        body = assert_problem(response, 422, "invalid_characters")
        assert body["errors"][0]["field"] == f"caller.{field}"

    @pytest.mark.parametrize(("field", "limit"), [("name", 100), ("provider", 200)])
    async def test_lengths_are_bounded(
        self, client, clock: FixedClock, cqc_agent: Key, field: str, limit: int
    ) -> None:
        ok = await self._failed(client, clock, cqc_agent, {**CALLER, field: "a" * limit})
        assert ok.status_code == 200
        too_long = await self._failed(
            client, clock, cqc_agent, {**CALLER, field: "a" * (limit + 1)}
        )
        assert too_long.status_code == 422
        empty = await self._failed(client, clock, cqc_agent, {**CALLER, field: ""})
        assert empty.status_code == 422

    async def test_the_caller_is_required_for_a_call_back(
        self, client, clock: FixedClock, cqc_agent: Key
    ) -> None:
        transfer = await start(client, cqc_agent, to_lgsco(clock.now()))
        response = await client.post(
            f"/v1/transfers/{transfer['id']}/failed",
            json={"reason": "high_call_volume"},
            headers=cqc_agent.headers,
        )
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["field"] == "caller"


async def test_two_outcomes_racing_for_one_transfer_make_one_call_back(
    client, clock: FixedClock, cqc_agent: Key, cqc_leader: Key
) -> None:
    import asyncio

    transfer = await start(client, cqc_agent, to_lgsco(clock.now()))
    url = f"/v1/transfers/{transfer['id']}/failed"
    responses = await asyncio.gather(
        *(
            client.post(url, json=failure("high_call_volume"), headers=cqc_agent.headers)
            for _ in range(5)
        )
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 409, 409, 409, 409], [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
        "transfer_not_waiting",
        "concurrent_change",
    }
    page = await client.get("/v1/callbacks", headers=cqc_leader.headers)
    assert len(page.json()["items"]) == 1
