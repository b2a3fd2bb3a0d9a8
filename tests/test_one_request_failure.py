"""The integration's hot path: a failed transfer recorded in one request is stored whole.

The records are written with plain INSERTs (one statement on PostgreSQL), so this reads them
back through the API: the transfer, the call back request, the caller's details, the email.
"""

from datetime import timedelta

import pytest

from app.core.clock import FixedClock
from tests.conftest import Key
from tests.helpers import failure, iso, to_lgsco

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths


async def test_a_failed_transfer_in_one_request_is_stored_with_its_call_back(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    started = clock.now() - timedelta(seconds=10)
    created = await client.post(
        "/v1/transfers",
        headers=cqc_agent.headers,
        json=to_lgsco(
            started,
            wait_started_at=iso(started),
            outcome={"status": "failed", **failure("high_call_volume")},
        ),
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "failed" and body["failure_reason"] == "high_call_volume"

    transfer = (await client.get(f"/v1/transfers/{body['id']}", headers=cqc_agent.headers)).json()
    assert transfer["status"] == "failed"
    assert transfer["failed_at"] == body["failed_at"]
    assert transfer["callback_request_id"] == body["callback_request_id"]

    callback = await client.get(
        f"/v1/callbacks/{body['callback_request_id']}", headers=cqc_agent.headers
    )
    assert callback.status_code == 200, callback.text
    shown = callback.json()
    assert shown["caller"]["name"] == "Ada Lovelace"
    assert shown["caller"]["contact_number"] == "+447911123456"
    assert shown["mailbox"] == "intake@lgo.org.uk"
    assert shown["delivery"]["status"] == "pending"
