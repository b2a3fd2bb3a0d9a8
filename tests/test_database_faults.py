"""The database failing under a request: a connection that dies before or as a transaction
commits, and a database that stops answering. A client never gets a 500, a request that was
saved is never saved twice, and its Idempotency-Key always leads back to its answer.

In-process faults (tests/db_faults.py) run on SQLite and PostgreSQL; the outage and the
terminated backends need a real PostgreSQL, through a real `handoff serve` process."""

import json
import logging
from typing import Any

import httpx
import pytest

from app.callbacks.models import CallbackRequest
from app.core.clock import FixedClock
from app.idempotency.models import IdempotencyKey
from app.outbox.models import OutboxMessage
from app.transfers.models import Transfer
from tests.conftest import Key
from tests.db_faults import ConnectionFaults
from tests.helpers import CALLER, assert_problem, count, failure, to_lgsco

INSERT_TRANSFER = "INSERT INTO transfers"
STORE_ANSWER = "UPDATE idempotency_keys"


def failed_in_one_request(clock: FixedClock) -> dict[str, Any]:
    outcome = {"status": "failed", **failure("high_call_volume", caller=dict(CALLER))}
    return to_lgsco(clock.now(), outcome=outcome)


def with_key(key: Key, idempotency_key: str) -> dict[str, str]:
    return {**key.headers, "Idempotency-Key": idempotency_key}


@pytest.fixture
def faults(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    injected = ConnectionFaults(app.state.engine, monkeypatch)
    yield injected
    injected.remove()


async def assert_one_failed_transfer(app: Any) -> None:
    assert await count(app, Transfer) == 1
    assert await count(app, CallbackRequest) == 1
    assert await count(app, OutboxMessage) == 1


async def test_a_write_whose_connection_dies_as_it_commits_gets_its_answer_and_so_does_its_retry(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key, faults: Any
) -> None:
    """The COMMIT that saves the call back and its stored answer reaches the database, and
    the connection dies before the acknowledgement comes back."""
    faults.die_after_commit_of = STORE_ANSWER
    body = failed_in_one_request(clock)
    first = await client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "c-1"))
    assert faults.die_after_commit_of is None, "the fault never fired"

    # The claim's row, read on a fresh connection, says the request was saved.
    assert first.status_code == 201, first.text
    retry = await client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "c-1"))
    assert retry.status_code == 201, retry.text
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    await assert_one_failed_transfer(app)


async def test_a_saved_write_answered_503_because_the_database_went_away_gets_its_answer_on_retry(
    client: httpx.AsyncClient,
    app: Any,
    clock: FixedClock,
    cqc_agent: Key,
    faults: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Saved, and then the database is gone before anything can say so: the client is told
    to come back, and when it does with the same key it gets the saved answer, never a 409
    and never a second call back."""
    faults.die_after_commit_of, faults.then_down = STORE_ANSWER, True
    body = failed_in_one_request(clock)
    with caplog.at_level(logging.WARNING):
        first = await client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "c-2"))
    assert_problem(first, 503, "database_unavailable")
    assert first.headers["Retry-After"] == "1"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]

    faults.down = False  # the database is back
    clock.advance(1)
    retry = await client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "c-2"))
    assert retry.status_code == 201, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    callback_id = retry.json()["callback_request_id"]
    read = await client.get(f"/v1/callbacks/{callback_id}", headers=cqc_agent.headers)
    assert read.status_code == 200 and read.json()["caller"]["name"] == CALLER["name"]
    await assert_one_failed_transfer(app)


async def test_a_connection_found_dead_mid_transaction_is_replaced_and_the_transaction_runs_again(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key, faults: Any
) -> None:
    """No pre-ping: the dead connection is found by the transaction's own statement, which
    nothing has committed, so the whole transaction runs again on a fresh connection."""
    faults.die_before = INSERT_TRANSFER
    created = await client.post(
        "/v1/transfers", json=failed_in_one_request(clock), headers=cqc_agent.headers
    )
    assert faults.die_before is None, "the fault never fired"
    assert created.status_code == 201, created.text
    await assert_one_failed_transfer(app)


async def test_a_write_without_a_key_whose_commit_is_cut_off_answers_503_not_500(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key, faults: Any
) -> None:
    """Whether it was saved is unknown, so it is not run again: the client is told to retry
    (and told that with an Idempotency-Key that is safe)."""
    faults.die_after_commit_of = INSERT_TRANSFER
    answer = await client.post(
        "/v1/transfers", json=failed_in_one_request(clock), headers=cqc_agent.headers
    )
    assert_problem(answer, 503, "database_unavailable")
    assert answer.headers["Retry-After"] == "1"
    assert "Idempotency-Key" in answer.json()["detail"]
    await assert_one_failed_transfer(app)  # it was saved once, and only once


async def test_while_the_database_is_down_reads_writes_and_keyed_writes_answer_503(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key, faults: Any
) -> None:
    faults.down = True
    answers = [
        await client.post("/v1/transfers", json=to_lgsco(clock.now()), headers=cqc_agent.headers),
        await client.post(
            "/v1/transfers", json=to_lgsco(clock.now()), headers=with_key(cqc_agent, "d-1")
        ),
        await client.get("/v1/callbacks", headers=cqc_agent.headers),
    ]
    for answer in answers:
        assert_problem(answer, 503, "database_unavailable")
        assert answer.headers["Retry-After"] == "1"
    faults.down = False
    again = await client.post(
        "/v1/transfers", json=to_lgsco(clock.now()), headers=with_key(cqc_agent, "d-1")
    )
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers  # nothing was saved the first time
    assert await count(app, Transfer) == 1
    assert await count(app, IdempotencyKey) == 1


def test_every_operation_that_reads_the_database_declares_503() -> None:
    from tests.test_idempotency import OPENAPI

    document = json.loads(OPENAPI.read_text())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path in ("/healthz",):
                assert "503" not in operation["responses"], path
                continue
            declared = operation["responses"].get("503")
            assert declared, (method, path)
            assert "database_unavailable" in declared["description"]
            assert "Retry-After" in declared.get("headers", {}), (method, path)
