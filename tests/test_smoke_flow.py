from app.core.clock import FixedClock
from tests.conftest import Key
from tests.helpers import assert_problem, failure, to_lgsco


async def test_cqc_adviser_waits_61_seconds_and_requests_a_call_back(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    started = await client.post("/v1/transfers", json=to_lgsco(clock.now()), headers=cqc_agent.headers)
    assert started.status_code == 201, started.text
    transfer = started.json()
    assert transfer["status"] == "waiting"
    assert transfer["dial"] == {"number": "0300 061 0614", "ivr_option": None, "ivr_label": None}
    assert transfer["wait_threshold_seconds"] == 60

    clock.advance(61)
    late = await client.post(f"/v1/transfers/{transfer['id']}/connected", json={},
                             headers=cqc_agent.headers)
    assert_problem(late, 409, "wait_threshold_exceeded")

    failed = await client.post(f"/v1/transfers/{transfer['id']}/failed", json=failure(),
                               headers=cqc_agent.headers)
    assert failed.status_code == 200, failed.text
    callback = await client.get(f"/v1/callbacks/{failed.json()['callback_request_id']}",
                                headers=cqc_agent.headers)
    assert callback.status_code == 200
    assert callback.json()["mailbox"] == "intake@lgo.org.uk"
    assert callback.json()["caller"]["contact_number"] == "+447911123456"
    assert callback.json()["delivery"]["status"] == "pending"
