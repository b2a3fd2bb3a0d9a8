"""Schemathesis fuzzes every operation of the committed OpenAPI document against the app.

Each operation gets a few dozen generated requests, sent in-process (ASGI) with an admin
key, and every answer must be no server error, have a status the document declares for the
operation, and match the declared schema for it.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.pool import NullPool

from app.core.auth import Role
from app.core.clock import FixedClock
from app.core.database import make_engine, make_sessionmaker
from app.core.settings import Settings
from app.main import create_app
from app.protocol.routes import RouteTable
from tests.conftest import Key, Keys

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
    database_url: str, tmp_path: Path, clock: FixedClock, routes: RouteTable
) -> AsyncIterator[Any]:
    settings = Settings(
        database_url=database_url,
        email_dir=tmp_path / "outbox",
        outbox_worker_enabled=False,
        rate_limit="1000000/minute",  # this test is about the document, not the limit
        _env_file=None,  # type: ignore[call-arg]
    )
    app = create_app(settings, clock=clock, routes=routes)
    # Schemathesis serves the app from an event loop of its own: connections are not pooled,
    # so none is shared between that loop and this one.
    await app.state.engine.dispose()
    app.state.engine = make_engine(database_url, poolclass=NullPool)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    yield app


@pytest.fixture
async def fuzz_key(fuzzed_app: Any) -> Key:
    return await Keys(fuzzed_app).make("cqc", Role.admin, "fuzzing admin")


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
def test_every_operation_answers_as_documented(case: Any, fuzzed_app: Any, fuzz_key: Key) -> None:
    case.call_and_validate(app=fuzzed_app, headers=fuzz_key.headers, checks=CHECKS)
