"""Schemathesis fuzzes every operation of the committed OpenAPI document against the app.

Each operation gets a few dozen generated requests, sent in-process (ASGI) with an admin
key, and every answer must be no server error, have a status the document declares for the
operation, and match the declared schema for it.
"""

import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.core.auth import Role
from app.core.clock import FixedClock
from app.core.settings import Settings
from app.main import create_app
from app.protocol.routes import RouteTable
from tests.conftest import Key, Keys
from tests.helpers import FEEDBACK, failed_transfer, to_lgsco

OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
schema = schemathesis.openapi.from_path(OPENAPI)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


@pytest.fixture
async def fuzzed_app(
    database_url: str, tmp_path: Path, clock: FixedClock, routes: RouteTable, hot_path: bool
) -> AsyncIterator[Any]:
    settings = Settings(
        database_url=database_url,
        email_dir=tmp_path / "outbox",
        outbox_worker_enabled=False,
        hot_path=hot_path,
        rate_limit="1000000/minute",  # this test is about the document, not the limit
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, clock=clock, routes=routes)
    yield app
    # Schemathesis serves the app from an event loop of its own and keeps it running: stop it
    # there, which closes the connections that loop opened.
    asgi.shutdown_lifespans()


@pytest.fixture
async def fuzz_key(fuzzed_app: Any) -> Key:
    return await Keys(fuzzed_app).make("cqc", Role.admin, "fuzzing admin")


@pytest.fixture
async def known_ids(fuzzed_app: Any, fuzz_key: Key, clock: FixedClock) -> dict[str, str]:
    """Records that exist, so that some requests reach them rather than a 404."""
    transport = httpx.ASGITransport(app=fuzzed_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://handoff.test") as client:
        waiting = await client.post(
            "/v1/transfers", json=to_lgsco(clock.now()), headers=fuzz_key.headers
        )
        failed = await failed_transfer(client, fuzz_key, clock.now())
        signpost = await client.post(
            "/v1/signposts", json={"to_org": "lgsco"}, headers=fuzz_key.headers
        )
        agent = await client.post(
            "/v1/keys", json={"role": "agent", "name": "desk"}, headers=fuzz_key.headers
        )
        published = await client.post(
            "/v1/reports/contact-volumes/2026-10/publish",
            json={"fluctuation_note": "None this month."},
            headers=fuzz_key.headers,
        )
        feedback = await client.post("/v1/feedback", json=FEEDBACK, headers=fuzz_key.headers)
    assert published.status_code == 201, published.text
    # The connections opened here belong to this event loop, not to the one schemathesis uses.
    await fuzzed_app.state.engine.dispose()
    return {
        "transfer_id": waiting.json()["id"],
        "callback_id": failed["callback_request_id"],
        "signpost_id": signpost.json()["id"],
        "feedback_id": feedback.json()["id"],
        "key_id": agent.json()["id"],
        "month": "2026-10",
        "version": "1",
    }


def reach_known_records(case: Any, known: dict[str, str]) -> None:
    """Point about half the generated ids (decided by the generated value) at real records."""
    for name, value in (case.path_parameters or {}).items():
        if name in known and zlib.crc32(str(value).encode()) % 2 == 0:
            case.path_parameters[name] = known[name]


def fuzz(case: Any, app: Any, key: Key, known: dict[str, str]) -> None:
    reach_known_records(case, known)
    case.call_and_validate(app=app, headers=key.headers, checks=CHECKS)


FUZZING = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


@schema.parametrize()
@FUZZING
def test_every_operation_answers_as_documented(
    case: Any, fuzzed_app: Any, fuzz_key: Key, known_ids: dict[str, str]
) -> None:
    fuzz(case, fuzzed_app, fuzz_key, known_ids)


# The two operations of the hot path (app/core/hot_path.py) once more, with every request
# through FastAPI's own handler: the document holds both ways.
@schema.include(operation_id=["start_transfer", "record_transfer_failed"]).parametrize()
@FUZZING
@pytest.mark.parametrize("hot_path", [False], ids=["full path"], indirect=True)
def test_the_hot_operations_answer_as_documented_without_the_hot_path(
    case: Any, fuzzed_app: Any, fuzz_key: Key, known_ids: dict[str, str]
) -> None:
    fuzz(case, fuzzed_app, fuzz_key, known_ids)
