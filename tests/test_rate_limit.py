"""The per-key rate limit: 429 with Retry-After past it, counted per API key, in the process
by default and in Redis when several processes must share one count."""

import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from app.core.clock import FixedClock
from app.core.settings import Settings
from app.main import create_app
from app.protocol.routes import RouteTable
from tests.conftest import Key, Keys
from tests.helpers import assert_problem

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@asynccontextmanager
async def serving(settings: Settings, clock: FixedClock, routes: RouteTable) -> AsyncIterator[Any]:
    app = create_app(settings, clock=clock, routes=routes)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://handoff.test") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client
    await app.state.engine.dispose()


async def test_past_the_limit_a_key_gets_429_with_retry_after(
    settings: Settings, clock: FixedClock, routes: RouteTable
) -> None:
    limited = settings.model_copy(update={"rate_limit": "3/minute"})
    async with serving(limited, clock, routes) as client:
        keys = Keys(client.app)  # type: ignore[attr-defined]
        busy = await keys.make("cqc", "agent", "busy desk")
        quiet = await keys.make("cqc", "agent", "quiet desk")
        for _ in range(3):
            assert (await client.get("/v1/routes", headers=busy.headers)).status_code == 200
        refused = await client.get("/v1/routes", headers=busy.headers)
        assert_problem(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        # Writes count too, and are refused before anything is stored.
        write = await client.post("/v1/signposts", json={"to_org": "lgsco"}, headers=busy.headers)
        assert_problem(write, 429, "rate_limited")
        # Another key has its own count.
        assert (await client.get("/v1/routes", headers=quiet.headers)).status_code == 200


async def test_the_default_limit_is_generous(settings: Settings) -> None:
    assert Settings(_env_file=None).rate_limit == "600/minute"  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(rate_limit="lots", _env_file=None)  # type: ignore[call-arg]


async def test_with_redis_two_processes_share_one_count(
    settings: Settings, clock: FixedClock, routes: RouteTable
) -> None:
    if not redis_answers():
        pytest.skip("Redis is not answering on 127.0.0.1:6379")
    shared = settings.model_copy(
        update={"rate_limit": "3/minute", "rate_limit_redis_url": REDIS_URL}
    )
    async with serving(shared, clock, routes) as first, serving(shared, clock, routes) as second:
        key: Key = await Keys(first.app).make("cqc", "agent", f"desk {uuid.uuid4()}")  # type: ignore[attr-defined]
        assert (await first.get("/v1/routes", headers=key.headers)).status_code == 200
        assert (await second.get("/v1/routes", headers=key.headers)).status_code == 200
        assert (await first.get("/v1/routes", headers=key.headers)).status_code == 200
        # In-process counting would let this through: each process has seen at most 2.
        refused = await second.get("/v1/routes", headers=key.headers)
        assert_problem(refused, 429, "rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1
