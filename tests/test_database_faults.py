"""The database failing under a request: a connection that dies before or as a transaction
commits, and a database that stops answering. A client never gets a 500, a request that was
saved is never saved twice, and its Idempotency-Key always leads back to its answer.

In-process faults (tests/db_faults.py) run on SQLite and PostgreSQL; the outage and the
terminated backends need a real PostgreSQL, through a real `handoff serve` process."""

import asyncio
import json
import logging
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.engine import make_url

from app.core.clock import FixedClock
from app.core.database import make_sessionmaker
from app.idempotency import service as idempotency
from app.idempotency.models import IdempotencyKey
from app.transfers.models import Transfer
from tests.conftest import PG_URL, Key
from tests.db_faults import ConnectionFaults, proxy_to
from tests.helpers import (
    CALLER,
    assert_one_failed_transfer,
    assert_problem,
    count,
    failure,
    to_lgsco,
)
from tests.server import Server, clean_env, free_port, script

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths

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
        await client.get(f"/v1/transfers/{uuid.uuid4()}", headers=cqc_agent.headers),
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


async def test_a_key_saved_without_its_answer_by_an_earlier_release_says_done_never_409(
    client: httpx.AsyncClient, app: Any, clock: FixedClock, cqc_agent: Key
) -> None:
    """The previous release could leave a key `committed` with no answer (its records saved,
    storing the answer failed): a retry is told the request was done, not to wait."""
    body = failed_in_one_request(clock)
    raw = json.dumps(body).encode()
    async with make_sessionmaker(app.state.engine)() as session:
        row_id = await idempotency.claim(
            session,
            api_key_id=cqc_agent.id,
            idempotency_key="legacy",
            request_hash=idempotency.fingerprint("POST", "/v1/transfers", raw),
            now=clock.now(),
            ttl=timedelta(hours=24),
        )
        await session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row_id)
            .values(state=idempotency.COMMITTED)
        )
        await session.commit()
    headers = {**with_key(cqc_agent, "legacy"), "Content-Type": "application/json"}
    for wait in (0, idempotency.ABANDONED_AFTER.total_seconds()):
        clock.advance(wait)
        retry = await client.post("/v1/transfers", content=raw, headers=headers)
        assert_problem(retry, 422, "idempotency_answer_not_kept")
    assert await count(app, Transfer) == 0  # never run a second time


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


# --- A real server process on a real PostgreSQL ----------------------------------------------


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if not PG_URL:
        pytest.skip("needs PostgreSQL: a server to cut off and backends to terminate")
    return database_url


def serve(database_url: str, log_dir: Path) -> Server:
    port = free_port()
    env = clean_env(
        HANDOFF_DATABASE_URL=database_url,
        HANDOFF_OUTBOX_WORKER_ENABLED="false",
        HANDOFF_LOG_FORMAT="json",
        HANDOFF_RATE_LIMIT="100000/minute",
        HANDOFF_EMAIL_DIR=str(log_dir / "outbox"),
    )
    server = Server([script(), "serve", "--port", str(port)], env, port, log_dir)
    try:
        server.wait_until_healthy()
    except BaseException:
        server.kill_leftovers()
        raise
    return server


def http_request(method: str, path: str, key: Key, body: Any = None, **headers: str) -> bytes:
    content = b"" if body is None else json.dumps(body).encode()
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: handoff.test",
        f"Authorization: Bearer {key.secret}",
    ]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(content)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + content


def read_response(stream: Any) -> tuple[int, dict[str, str], bytes]:
    status_line = stream.readline()
    assert status_line, "the server closed the connection"
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, stream.read(int(headers.get("content-length", "0")))


async def test_during_an_outage_requests_on_one_keep_alive_connection_all_get_503_and_it_stays_open(
    postgres_url: str, cqc_agent: Key, tmp_path: Path
) -> None:
    """PostgreSQL is cut off (a TCP proxy between the service and it drops every connection
    and refuses new ones) while requests are already queued on one connection."""
    real = make_url(postgres_url)
    with proxy_to(real.host or "127.0.0.1", real.port or 5432) as proxy:
        server = serve(real.set(port=proxy.port).render_as_string(False), tmp_path)
        try:
            with socket.create_connection(
                ("127.0.0.1", int(server.base_url.rsplit(":", 1)[1]))
            ) as sock:
                sock.settimeout(60)
                stream = sock.makefile("rb")
                now = datetime.now(UTC)
                sock.sendall(http_request("POST", "/v1/transfers", cqc_agent, to_lgsco(now)))
                status, _, warm = read_response(stream)
                assert status == 201, warm
                transfer_id = json.loads(warm)["id"]

                proxy.cut()
                pipelined = [
                    http_request("POST", "/v1/transfers", cqc_agent, to_lgsco(now)),
                    http_request(
                        "POST", "/v1/transfers", cqc_agent, to_lgsco(now), Idempotency_Key="o-1"
                    ),
                    http_request("GET", f"/v1/transfers/{transfer_id}", cqc_agent),
                    http_request("POST", f"/v1/transfers/{transfer_id}/connected", cqc_agent, {}),
                    http_request("GET", f"/v1/callbacks/{uuid.uuid4()}", cqc_agent),
                ]
                sock.sendall(b"".join(pipelined))  # all sent before the first answer
                for _ in pipelined:
                    status, headers, body = read_response(stream)
                    assert status == 503, body
                    assert headers["content-type"].startswith("application/problem+json")
                    assert json.loads(body)["code"] == "database_unavailable"
                    assert headers["retry-after"] == "1"
                    assert headers.get("connection") != "close"
                # Still open: a request that needs no database is answered as usual.
                sock.sendall(http_request("GET", "/v1/routes", cqc_agent))
                assert read_response(stream)[0] == 200

                proxy.restore()  # the same connection serves again, on fresh database ones
                sock.sendall(
                    http_request(
                        "POST", "/v1/transfers", cqc_agent, to_lgsco(now), Idempotency_Key="o-1"
                    )
                )
                status, headers, body = read_response(stream)
                assert status == 201, body
                assert "idempotent-replayed" not in headers  # nothing was saved in the outage
        finally:
            server.stop()
    records = server.log_records()
    assert not [r for r in records if r["level"] in ("error", "critical")], records
    unavailable = [r for r in records if r["message"].startswith("database unavailable")]
    assert len(unavailable) == len(pipelined)
    assert all(r["level"] == "warning" and "stack" not in r for r in unavailable)


@pytest.mark.parametrize("writes", ["keyed starts", "one-request failures without a key"])
async def test_terminating_every_backend_of_the_pool_under_load_loses_nothing_and_answers_no_5xx(
    postgres_url: str, cqc_agent: Key, tmp_path: Path, writes: str
) -> None:
    """A bounded load of writes and reads, while every backend of the service's pool is
    terminated four times. The writes are either starts with an Idempotency-Key each, as the
    integration sends them, or one-request failures with no key, whose one statement is its
    own transaction (tests/test_statement_alone.py)."""
    clients, rounds, per_client = 6, 4, 30
    server = serve(postgres_url, tmp_path)
    real = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    answers: list[tuple[str, int, str]] = []
    created: list[str] = []
    terminated: list[int] = []
    total = clients * per_client * 2  # a write and a read each
    milestones = [asyncio.Event() for _ in range(rounds)]  # when to terminate the pool

    def answered(method: str, response: httpx.Response) -> None:
        answers.append((method, response.status_code, response.text))
        for round_no, milestone in enumerate(milestones, start=1):
            if len(answers) >= round_no * total // (rounds + 1):
                milestone.set()

    async def load(client_no: int, http: httpx.AsyncClient) -> None:
        for n in range(per_client):
            reference = f"T-{client_no}-{n}"
            if writes == "keyed starts":
                body = to_lgsco(datetime.now(UTC), sender_reference=reference)
                headers = {**cqc_agent.headers, "Idempotency-Key": f"t-{client_no}-{n}"}
            else:
                outcome = {"status": "failed", **failure("high_call_volume", caller=dict(CALLER))}
                body = to_lgsco(datetime.now(UTC), sender_reference=reference, outcome=outcome)
                headers = cqc_agent.headers
            write = await http.post("/v1/transfers", json=body, headers=headers)
            answered("POST", write)
            if write.status_code == 201:
                created.append(write.json()["id"])
                read = await http.get(f"/v1/transfers/{created[-1]}", headers=cqc_agent.headers)
                answered("GET", read)

    async def terminate_the_pool() -> None:
        admin = await asyncpg.connect(real)
        try:
            for milestone in milestones:
                await milestone.wait()
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'"
                )
                terminated.append(int(killed))
        finally:
            await admin.close()

    try:
        limits = httpx.Limits(max_connections=clients)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60) as http:
            await asyncio.gather(terminate_the_pool(), *(load(c, http) for c in range(clients)))
    finally:
        server.stop()

    assert len(terminated) == rounds and all(terminated), terminated
    server_errors = [a for a in answers if a[1] >= 500]
    assert not server_errors, server_errors
    assert {a[1] for a in answers} == {200, 201}, {a[1] for a in answers}
    assert len(created) == clients * per_client
    saved = await asyncpg.connect(real)
    try:
        ids = {str(row["id"]) for row in await saved.fetch("SELECT id FROM transfers")}
        if writes != "keyed starts":  # each with all its rows, once
            for table, each in [
                ("callback_requests", 1),
                ("caller_details", 1),
                ("outbox_messages", 1),
                ("audit_events WHERE record_type <> 'api_key'", 2),  # not the key's own
            ]:
                rows = await saved.fetchval(f"SELECT count(*) FROM {table}")  # noqa: S608
                assert rows == each * len(created), (table, rows)
    finally:
        await saved.close()
    assert ids == set(created)
    records = server.log_records()
    assert not [r for r in records if r["level"] in ("error", "critical")]
    # Each termination left the next request a dead connection, and it ran again (or, found
    # dead before anything was sent on it, ran on another).
    runs_again = [r for r in records if "on a fresh one" in r["message"]]
    print(f"terminated {terminated}; transactions run again: {len(runs_again)}")
    assert len(runs_again) >= rounds
