"""Idempotency-Key: a telephony integration that retries never creates a second call back
request or a second email, and a stored answer keeps no readable personal data."""

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.audit.service import SYSTEM
from app.callbacks.models import CallbackRequest
from app.core.clock import FixedClock
from app.core.database import make_sessionmaker
from app.housekeeping.retention import purge_personal_data
from app.idempotency import service as idempotency
from app.idempotency.models import IdempotencyKey
from app.transfers import service as transfers_service
from app.transfers.models import Transfer
from tests.conftest import Key
from tests.helpers import (
    CALLER,
    FEEDBACK,
    assert_one_failed_transfer,
    assert_problem,
    count,
    failure,
    to_lgsco,
)
from tests.outbox_support import SmtpServer, worker

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths

OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def failed_in_one_request(clock: FixedClock, **caller: str) -> dict[str, Any]:
    """A CQC adviser's call that failed on busy lines, recorded in one request."""
    outcome = {"status": "failed", **failure("high_call_volume", caller={**CALLER, **caller})}
    return to_lgsco(clock.now(), outcome=outcome)


def with_key(key: Key, idempotency_key: str) -> dict[str, str]:
    return {**key.headers, "Idempotency-Key": idempotency_key}


async def test_a_retry_gets_the_first_answer_and_creates_nothing(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key
) -> None:
    body = failed_in_one_request(clock)
    first = await client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "call-1"))
    assert first.status_code == 201, first.text

    clock.advance(5)  # the integration timed out and tries again
    retry = await client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "call-1"))

    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    await assert_one_failed_transfer(app)


async def test_each_creating_post_is_idempotent(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_leader: Key, key_factory: Any
) -> None:
    """Signposts, feedback, outcomes and keys: a retry returns the first answer."""
    started = await client.post(
        "/v1/transfers", json=to_lgsco(clock.now()), headers=cqc_leader.headers
    )
    admin = await key_factory.make("cqc", "admin", "cqc admin")
    requests: list[tuple[Key, str, dict[str, Any]]] = [
        (cqc_leader, "/v1/signposts", {"to_org": "lgsco"}),
        (
            cqc_leader,
            "/v1/feedback",
            FEEDBACK,
        ),
        (cqc_leader, f"/v1/transfers/{started.json()['id']}/failed", failure("high_call_volume")),
        (admin, "/v1/keys", {"role": "agent", "name": "desk 9"}),
    ]
    for key, path, body in requests:
        first = await client.post(path, json=body, headers=with_key(key, f"k-{path}"))
        assert first.status_code in (200, 201), first.text
        retry = await client.post(path, json=body, headers=with_key(key, f"k-{path}"))
        assert (retry.status_code, retry.json()) == (first.status_code, first.json()), path
    assert await count(app, CallbackRequest) == 1
    # The key's secret is shown once, and again only to a retry of the request that made it.
    keys = await client.get("/v1/keys", headers=admin.headers)
    assert [k["name"] for k in keys.json()["items"]].count("desk 9") == 1


async def test_the_same_key_with_another_body_is_refused(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key
) -> None:
    first = await client.post(
        "/v1/transfers", json=failed_in_one_request(clock), headers=with_key(cqc_agent, "k1")
    )
    assert first.status_code == 201
    other = await client.post(
        "/v1/transfers",
        json=failed_in_one_request(clock, name="Grace Hopper"),
        headers=with_key(cqc_agent, "k1"),
    )
    assert_problem(other, 422, "idempotency_key_reused")
    elsewhere = await client.post(
        "/v1/signposts", json={"to_org": "lgsco"}, headers=with_key(cqc_agent, "k1")
    )
    assert_problem(elsewhere, 422, "idempotency_key_reused")
    assert await count(app, CallbackRequest) == 1


async def test_a_key_still_running_answers_409_and_a_slow_first_request_cannot_win_late(
    client: httpx.AsyncClient,
    app: Any,
    clock: FixedClock,
    cqc_agent: Key,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first request stalls inside the service (a slow database, say) while retries come."""
    entered, go_on = asyncio.Event(), asyncio.Event()
    original = transfers_service.start_transfer

    async def stalled(*args: Any, **kwargs: Any) -> Any:
        if not entered.is_set():
            entered.set()
            await go_on.wait()
        return await original(*args, **kwargs)

    monkeypatch.setattr(transfers_service, "start_transfer", stalled)
    body = failed_in_one_request(clock)
    headers = with_key(cqc_agent, "slow-1")
    first = asyncio.create_task(client.post("/v1/transfers", json=body, headers=headers))
    await entered.wait()

    retry = await client.post("/v1/transfers", json=body, headers=headers)
    assert_problem(retry, 409, "idempotency_request_in_progress")
    assert retry.headers["Retry-After"] == "1"

    # A minute on, the claim counts as abandoned: a retry takes it over and runs.
    clock.advance(idempotency.ABANDONED_AFTER.total_seconds())
    taken_over = await client.post("/v1/transfers", json=body, headers=headers)
    assert taken_over.status_code == 201, taken_over.text

    # The first request finally goes on, but can no longer commit: no second call back.
    go_on.set()
    assert_problem(await first, 409, "idempotency_request_in_progress")
    assert await count(app, Transfer) == 1
    assert await count(app, CallbackRequest) == 1
    again = await client.post("/v1/transfers", json=body, headers=headers)
    assert again.json() == taken_over.json()


async def test_a_claim_left_by_a_dead_process_is_taken_over_after_a_minute(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key
) -> None:
    body = failed_in_one_request(clock)
    raw = json.dumps(body).encode()
    # A process claimed the key and died before it committed anything.
    async with make_sessionmaker(app.state.engine)() as session:
        await idempotency.claim(
            session,
            api_key_id=cqc_agent.id,
            idempotency_key="orphan",
            request_hash=idempotency.fingerprint("POST", "/v1/transfers", raw),
            now=clock.now(),
            ttl=timedelta(hours=24),
        )
    headers = {**with_key(cqc_agent, "orphan"), "Content-Type": "application/json"}
    clock.advance(idempotency.ABANDONED_AFTER.total_seconds() - 1)
    early = await client.post("/v1/transfers", content=raw, headers=headers)
    assert_problem(early, 409, "idempotency_request_in_progress")
    clock.advance(1)
    late = await client.post("/v1/transfers", content=raw, headers=headers)
    assert late.status_code == 201, late.text
    assert await count(app, CallbackRequest) == 1


@pytest.mark.parametrize(
    "value", [b"", b"x" * 256, "caf\u00e9".encode(), b"tab\there", b"bell\x07"]
)
async def test_an_invalid_key_is_refused_with_its_own_code(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key, value: bytes
) -> None:
    headers = [*cqc_agent.headers.items(), ("Idempotency-Key", value)]
    response = await client.post("/v1/signposts", json={"to_org": "lgsco"}, headers=headers)
    assert_problem(response, 400, "invalid_idempotency_key")
    assert await count(app, IdempotencyKey) == 0


async def test_the_longest_and_oddest_printable_keys_work(
    client: httpx.AsyncClient, cqc_agent: Key
) -> None:
    for value in ("x" * 255, "~!@#$%^&*()_+{}|:\"<>?`-=[]\\;',./", "a b"):
        response = await client.post(
            "/v1/signposts", json={"to_org": "lgsco"}, headers=with_key(cqc_agent, value)
        )
        assert response.status_code == 201, (value, response.text)


async def test_keys_are_scoped_to_the_calling_api_key(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key, key_factory: Any
) -> None:
    colleague = await key_factory.make("cqc", "agent", "cqc desk 2")
    body = failed_in_one_request(clock)
    mine = await client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "same"))
    theirs = await client.post("/v1/transfers", json=body, headers=with_key(colleague, "same"))
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert await count(app, CallbackRequest) == 2


async def test_a_request_that_failed_gives_its_key_back(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key
) -> None:
    wrong = await client.post(
        "/v1/transfers", json={"to_org": "nowhere"}, headers=with_key(cqc_agent, "fix-me")
    )
    assert wrong.status_code == 422, wrong.text
    fixed = await client.post(
        "/v1/transfers", json=failed_in_one_request(clock), headers=with_key(cqc_agent, "fix-me")
    )
    assert fixed.status_code == 201, fixed.text


async def test_keys_are_kept_24_hours_then_purged(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key
) -> None:
    body = failed_in_one_request(clock)
    first = await client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "day"))
    clock.advance(24 * 3600 - 1)
    late_retry = await client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "day"))
    assert late_retry.json() == first.json()

    async with make_sessionmaker(app.state.engine)() as session:
        assert await idempotency.purge_expired_idempotency_keys(session, clock.now()) == 0
    assert await count(app, IdempotencyKey) == 1

    # The purge job (`handoff purge`, and the worker's schedule) deletes it once it expires.
    clock.advance(1)
    sessionmaker = make_sessionmaker(app.state.engine)
    await purge_personal_data(sessionmaker, app.state.settings, now=clock.now(), actor=SYSTEM)
    assert await count(app, IdempotencyKey) == 0


async def test_a_stored_answer_holds_no_readable_personal_data(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key
) -> None:
    body = failed_in_one_request(clock)
    first = await client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "sealed"))
    callback_id = first.json()["callback_request_id"]
    async with make_sessionmaker(app.state.engine)() as session:
        row = (await session.scalars(select(IdempotencyKey))).one()
    stored = row.response_body or b""
    assert row.response_status == 201 and len(stored) > 100
    for needle in (callback_id, "callback_request_id", "sealed", CALLER["name"]):
        assert needle.encode() not in stored
        assert needle not in row.key_hash + row.request_hash


async def test_a_post_without_the_header_is_not_deduplicated(
    client: httpx.AsyncClient, app: Any, cqc_agent: Key
) -> None:
    for _ in range(2):
        response = await client.post(
            "/v1/signposts", json={"to_org": "lgsco"}, headers=cqc_agent.headers
        )
        assert response.status_code == 201
    assert await count(app, IdempotencyKey) == 0


def test_every_creating_post_in_the_openapi_document_accepts_the_header() -> None:
    document = json.loads(OPENAPI.read_text())
    posts = {
        path: operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method == "post"
    }
    assert "/v1/transfers" in posts and "/v1/transfers/{transfer_id}/failed" in posts
    for path, operation in posts.items():
        headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path
        assert not headers["Idempotency-Key"].get("required", False), path
        assert {"400", "409", "422"} <= operation["responses"].keys(), path


async def test_twenty_concurrent_retries_make_one_call_back_and_one_email(
    client: httpx.AsyncClient,
    app: Any,
    settings: Any,
    clock: FixedClock,
    cqc_agent: Key,
    is_postgres: bool,
) -> None:
    if not is_postgres:
        pytest.skip("needs PostgreSQL: SQLite runs one writer at a time, so nothing races")
    body = failed_in_one_request(clock)
    answers = await asyncio.gather(
        *(
            client.post("/v1/transfers", json=body, headers=with_key(cqc_agent, "storm"))
            for _ in range(20)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, statuses
    created = [a.json() for a in answers if a.status_code == 201]
    assert created and all(c == created[0] for c in created)
    for refused in (a for a in answers if a.status_code == 409):
        assert_problem(refused, 409, "idempotency_request_in_progress")

    await assert_one_failed_transfer(app)

    smtp = SmtpServer().start()
    try:
        await worker(app, smtp.settings(settings)).drain()
    finally:
        smtp.stop()
    assert len(smtp.received) == 1
    assert smtp.received[0].rcpt_tos == ["intake@lgo.org.uk"]
