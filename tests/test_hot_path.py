"""The hot path (app/core/hot_path.py) answers exactly as FastAPI's own handler does.

One story of requests to the two hot operations, good and bad, is told to an app with the
hot path and to one without it, on the same database. Each answer must be the same (status,
headers a client reads, body, with only the new records' ids differing), the same records
must be written, and the hot path must really have served the good requests: FastAPI's own
handler is counted, and runs only for the requests the hot path declined.
"""

import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import fastapi.routing
import httpx
import pytest
from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from app.audit.models import AuditEvent
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.auth import AnyKey, Role
from app.core.clock import FixedClock
from app.core.deps import Session
from app.core.hot_path import HotPath, hot_path
from app.core.settings import Settings
from app.idempotency.api_route import IdempotentAPIRoute
from app.main import create_app
from app.outbox.models import OutboxMessage
from app.protocol.routes import RouteTable
from app.transfers.models import Transfer
from tests.conftest import Keys
from tests.helpers import CALLER, count, failure, iso, to_lgsco

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# What a client reads of an answer besides its status and body (not the request id, which
# differs on every request).
HEADERS = (
    "content-type",
    "content-length",
    "www-authenticate",
    "retry-after",
    "allow",
    "idempotent-replayed",
)
TABLES = (Transfer, CallbackRequest, CallerDetails, OutboxMessage, AuditEvent)


class HandlerCounter:
    """Counts the runs of FastAPI's own request handler. Each run starts by describing its
    endpoint for error messages (`fastapi.routing._extract_endpoint_context`, looked up at
    every run), before it reads the body: that call is what is counted. A FastAPI release
    without it fails this module's fixture at once rather than counting nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def wrap(self, describe: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return describe(*args, **kwargs)

        return counted


@pytest.fixture
def handler_runs(monkeypatch: pytest.MonkeyPatch) -> HandlerCounter:
    counter = HandlerCounter()
    describe = fastapi.routing._extract_endpoint_context
    monkeypatch.setattr(fastapi.routing, "_extract_endpoint_context", counter.wrap(describe))
    return counter


@pytest.fixture
async def two_apps(
    settings: Settings, clock: FixedClock, routes: RouteTable
) -> AsyncIterator[dict[bool, Any]]:
    apps = {
        on: create_app(settings.model_copy(update={"hot_path": on}), clock=clock, routes=routes)
        for on in (True, False)
    }
    yield apps
    for application in apps.values():
        await application.state.engine.dispose()


# Who should answer a request in the app with the hot path: the hot path, FastAPI's own
# handler (declined by the hot path), or neither (a middleware's 415, an idempotent replay).
HOT, FULL, NONE = "hot path", "FastAPI's handler", "no handler"
# What was sent, who should answer it, the answer, and how many times FastAPI's own handler
# ran for it.
Step = tuple[str, str, httpx.Response, int]


async def story(application: Any, now: datetime, handler_runs: HandlerCounter) -> list[Step]:
    """The requests, in order."""
    keys = Keys(application)
    agent = await keys.make("cqc", Role.agent, "desk")
    owner = await keys.make("cqc", Role.relationship_owner, "owner")
    lgsco = await keys.make("lgsco", Role.agent, "lgsco desk")
    auth = agent.headers
    failed_outcome = {"status": "failed", "reason": "high_call_volume", "caller": dict(CALLER)}
    steps: list[Step] = []
    transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://handoff.test") as client:

        async def post(
            label: str, hot: str, path: str, headers: dict[str, str], **kwargs: Any
        ) -> httpx.Response:
            runs_before = handler_runs.calls
            response = await client.post(path, headers=headers, **kwargs)
            steps.append((label, hot, response, handler_runs.calls - runs_before))
            return response

        start = "/v1/transfers"

        async def raw(label: str, who: str, content_type: str, content: bytes) -> None:
            await post(label, who, start, {**auth, "Content-Type": content_type}, content=content)

        await post(
            "failed in one request", HOT, start, auth, json=to_lgsco(now, outcome=failed_outcome)
        )
        waiting = await post("waiting", HOT, start, auth, json=to_lgsco(now))
        another = await post("another waiting", HOT, start, auth, json=to_lgsco(now))
        await raw(
            "charset given",
            HOT,
            "application/json; charset=utf-8",
            b'{"to_org": "lgsco", "sender_reference": "CQC-2", "permission_to_share_at": "'
            + iso(now).encode()
            + b'"}',
        )
        await post("no route", HOT, start, auth, json={"to_org": "cqc"})
        await post("topic not applicable", HOT, start, auth, json=to_lgsco(now, topic="x"))
        await post(
            "permission in the future",
            HOT,
            start,
            auth,
            json=to_lgsco(now, permission_to_share_at=iso(now + timedelta(hours=1))),
        )
        await post("no to_org", FULL, start, auth, json={"sender_reference": "CQC-1"})
        await post("unknown field", FULL, start, auth, json=to_lgsco(now, colour="red"))
        bad_number = {**failed_outcome, "caller": {**CALLER, "contact_number": "12"}}
        await post("bad number", FULL, start, auth, json=to_lgsco(now, outcome=bad_number))
        await post("a list", FULL, start, auth, json=[1, 2])
        await raw("broken JSON", FULL, "application/json", b'{"to_org": ')
        await raw("empty body", FULL, "application/json", b"")
        await raw("JSON by another name", FULL, "application/vnd.api+json", b'{"to_org": "lgsco"}')
        await raw("plain text", NONE, "text/plain", b'{"to_org": "lgsco"}')
        await post("no key", FULL, start, {}, json=to_lgsco(now))
        await post(
            "unknown key", FULL, start, {"Authorization": "Bearer hk_nope"}, json=to_lgsco(now)
        )
        await post("basic auth", FULL, start, {"Authorization": "Basic abc"}, json=to_lgsco(now))
        await post("relationship owner", FULL, start, owner.headers, json=to_lgsco(now))
        await post(
            "with an Idempotency-Key",
            HOT,
            start,
            {**auth, "Idempotency-Key": "k-1"},
            json=to_lgsco(now),
        )
        await post(
            "the same key again",
            NONE,
            start,
            {**auth, "Idempotency-Key": "k-1"},
            json=to_lgsco(now),
        )

        waiting_id = waiting.json()["id"]
        failed_path = f"/v1/transfers/{waiting_id}/failed"
        await post("failed, threshold not reached", HOT, failed_path, auth, json=failure())
        await post("failed", HOT, failed_path, auth, json=failure("high_call_volume"))
        await post("failed twice", HOT, failed_path, auth, json=failure("high_call_volume"))
        another_path = f"/v1/transfers/{another.json()['id']}/failed"
        await post("another body's transfer", HOT, another_path, lgsco.headers, json=failure())
        await post(
            "unknown transfer", HOT, f"/v1/transfers/{uuid.uuid4()}/failed", auth, json=failure()
        )
        await post("not an id", FULL, "/v1/transfers/abc/failed", auth, json=failure())
        await post("no reason", FULL, another_path, auth, json={"caller": dict(CALLER)})
    return steps


def _seen(response: httpx.Response) -> tuple[int, dict[str, str], str]:
    headers = {name: response.headers[name] for name in HEADERS if name in response.headers}
    return response.status_code, headers, UUID.sub("<id>", response.text)


async def test_the_hot_path_answers_as_fastapis_handler_does(
    two_apps: dict[bool, Any], clock: FixedClock, handler_runs: HandlerCounter
) -> None:
    told: dict[bool, list[Step]] = {}
    written: dict[bool, dict[str, int]] = {}
    before = {model.__name__: 0 for model in TABLES}
    for on in (True, False):
        told[on] = await story(two_apps[on], clock.now(), handler_runs)
        totals = {model.__name__: await count(two_apps[on], model) for model in TABLES}
        written[on] = {name: totals[name] - before[name] for name in totals}
        before = totals

    for hot_step, full_step in zip(told[True], told[False], strict=True):
        assert _seen(hot_step[2]) == _seen(full_step[2]), hot_step[0]
    assert written[True] == written[False]
    assert written[True]["Transfer"] == 5  # four good starts and the idempotent one
    # Answers of every kind were compared, not only the good ones.
    statuses = {step[2].status_code for step in told[True]}
    assert {200, 201, 401, 403, 404, 409, 415, 422} <= statuses

    # The hot path served what it should, and declined the rest to FastAPI's handler; the
    # app without it sent everything there.
    for on in (True, False):
        for label, who, _, handled in told[on]:
            by_fastapi = who == FULL or (who == HOT and not on)
            assert handled == (1 if by_fastapi else 0), f"{label} ({'with' if on else 'without'})"


def test_a_hot_endpoint_with_a_parameter_it_cannot_work_out_is_refused_when_built() -> None:
    router = APIRouter(route_class=IdempotentAPIRoute)

    with pytest.raises(TypeError, match="query parameters"):

        @router.post("/v1/odd")
        @hot_path
        async def odd(principal: AnyKey, session: Session, page: int = 1) -> dict[str, int]:
            return {"page": page}

    with pytest.raises(TypeError, match="needs a response model, as JSON"):

        @router.post("/v1/text", response_class=PlainTextResponse)
        @hot_path
        async def text(principal: AnyKey, session: Session) -> str:
            return "ok"

    plain = APIRouter(route_class=IdempotentAPIRoute)

    @plain.post("/v1/fine")
    async def fine(principal: AnyKey, session: Session) -> dict[str, str]:
        return {"ok": "yes"}

    route = plain.routes[0]
    assert isinstance(route, fastapi.routing.APIRoute)
    assert HotPath(route).resolvers  # principal and session: both known kinds
