"""`handoff serve --workers 2`, for real: keys made with the CLI, transfers driven over HTTP
into both worker processes, metrics summed across them, a clean stop on SIGTERM.

Runs on a SQLite file in the default suite, and on PostgreSQL when TEST_DATABASE_URL is set."""

import asyncio
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PG_URL, _truncate_all, sqlite_url
from tests.helpers import CALLER
from tests.server import Server, clean_env, free_port, process_exists, run, script

TRANSFERS = 12  # per direction; every other one fails into a call back request


@pytest.fixture(params=["sqlite", "postgresql"])
def served_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        if not PG_URL:
            pytest.skip("TEST_DATABASE_URL is unset")
        request.getfixturevalue("_migrated_template")  # the schema, before emptying it
        asyncio.run(_truncate_all(PG_URL))
        return PG_URL
    if PG_URL:
        pytest.skip("the SQLite run is the default suite's; this leg is PostgreSQL's")
    return sqlite_url(tmp_path / "served.db")


def create_key(env: dict[str, str], org: str) -> str:
    out = run([script(), "keys", "create", "--org", org, "--role", "agent", "--name", "mw"], env)
    match = re.search(r"secret:\s+(\S+)", out)
    assert match, out
    return match.group(1)


async def one_transfer(client: httpx.AsyncClient, key: str, to_org: str, n: int) -> str | None:
    """Start a transfer, then record it connected or failed; the call back id when failed."""
    headers = {"Authorization": f"Bearer {key}", "X-Request-ID": f"mw-{to_org}-{n}"}
    now = datetime.now(UTC).isoformat()
    body = {"to_org": to_org, "sender_reference": f"REF-{n}", "permission_to_share_at": now}
    if to_org == "cqc":
        body["topic"] = "other"
    started = await client.post("/v1/transfers", json=body, headers=headers)
    assert started.status_code == 201, started.text
    assert started.headers["X-Request-ID"] == headers["X-Request-ID"]
    transfer = started.json()["id"]
    if n % 2:
        done = await client.post(f"/v1/transfers/{transfer}/connected", json={}, headers=headers)
        assert done.status_code == 200, done.text
        return None
    done = await client.post(
        f"/v1/transfers/{transfer}/failed",
        json={"reason": "high_call_volume", "caller": CALLER},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    callback_id: str = done.json()["callback_request_id"]
    return callback_id


def scrape(base_url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    # A new connection each time, so that successive scrapes can reach different workers.
    text = httpx.get(f"{base_url}/metrics", headers={"Connection": "close"}).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def access_pids(server: Server) -> set[int]:
    return {r["pid"] for r in server.log_records() if r["logger"] == "handoff.access"}


async def drive_transfers(base_url: str, cqc_key: str, lgsco_key: str) -> None:
    """Transfers both ways, concurrently, over a pool of connections; then their call backs."""
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as client:
        results = await asyncio.gather(
            *(one_transfer(client, cqc_key, "lgsco", n) for n in range(TRANSFERS)),
            *(one_transfer(client, lgsco_key, "cqc", n) for n in range(TRANSFERS)),
        )
        callback_ids = [r for r in results if r]
        assert len(set(callback_ids)) == TRANSFERS  # half of each direction's
        for key, ids in (
            (cqc_key, callback_ids[: TRANSFERS // 2]),
            (lgsco_key, callback_ids[TRANSFERS // 2 :]),
        ):
            for callback_id in ids:
                shown = await client.get(
                    f"/v1/callbacks/{callback_id}", headers={"Authorization": f"Bearer {key}"}
                )
                assert shown.status_code == 200, shown.text
                assert shown.json()["delivery"]["status"] in {"pending", "sending", "sent"}


def test_two_workers_serve_transfers_and_stop_cleanly(served_database: str, tmp_path: Path) -> None:
    env = clean_env(
        HANDOFF_DATABASE_URL=served_database,
        HANDOFF_EMAIL_DIR=str(tmp_path / "mail"),
        HANDOFF_LOG_FORMAT="json",
        HANDOFF_LOG_LEVEL="INFO",
        HANDOFF_SESSION_SECRET=uuid.uuid4().hex,
        TMPDIR=str(tmp_path),  # where `serve` makes the workers' metrics folder
    )
    run([script(), "migrate"], env)
    cqc_key, lgsco_key = create_key(env, "cqc"), create_key(env, "lgsco")
    port = free_port()
    server = Server([script(), "serve", "--workers", "2", "--port", str(port)], env, port, tmp_path)
    try:
        server.wait_until_healthy()
        asyncio.run(drive_transfers(server.base_url, cqc_key, lgsco_key))

        # Until both workers have answered something (bounded: new connections are shared out
        # between the two processes by the kernel).
        for _ in range(30):
            if len(access_pids(server)) == 2:
                break
            for _ in range(10):
                httpx.get(f"{server.base_url}/healthz", headers={"Connection": "close"})
        worker_pids = access_pids(server)
        assert len(worker_pids) == 2, "one worker answered everything"

        # Any worker answers a scrape with the totals of both.
        for _ in range(6):
            samples = scrape(server.base_url)
            started = samples[
                (
                    "handoff_http_requests_total",
                    frozenset(
                        {"method": "POST", "route": "/v1/transfers", "status": "201"}.items()
                    ),
                )
            ]
            assert started == 2 * TRANSFERS
            for from_org, to_org in (("cqc", "lgsco"), ("lgsco", "cqc")):
                key = (
                    "handoff_callback_requests_created_total",
                    frozenset({"from_org": from_org, "to_org": to_org}.items()),
                )
                assert samples[key] == TRANSFERS // 2
            assert ("handoff_outbox_pending_messages", frozenset()) in samples
    finally:
        returncode = server.stop()
        server.kill_leftovers()

    assert returncode == 0, server.logs()
    assert not any(process_exists(pid) for pid in worker_pids)
    assert not list(tmp_path.glob("handoff-metrics-*")), "the metrics folder was left behind"
    records = server.log_records()  # every line is JSON
    assert sum("Started server process" in r["message"] for r in records) == 2
    everything = server.logs()
    for value in (*CALLER.values(), "+447911123456"):
        assert value not in everything
