"""Small builders for request bodies, so tests read as the adviser's story."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select

from app.core.database import make_sessionmaker, side_engine


def iso(moment: datetime) -> str:
    return moment.isoformat()


FEEDBACK = {
    "about_org": "lgsco",
    "case_references": ["LG-1"],
    "reason_for_contact": "A complaint about a care home's fees.",
    "names_and_times": "J. Smith, 10:05",
    "correct_advice": "Transfer to LGSCO.",
    "suggested_action": "Refresh the intake script.",
}

CALLER = {"name": "Ada Lovelace", "contact_number": "07911 123456", "provider": "Sunrise Care Home"}


def to_lgsco(now: datetime, **overrides: Any) -> dict[str, Any]:
    body = {"to_org": "lgsco", "sender_reference": "CQC-1001", "permission_to_share_at": iso(now)}
    body.update(overrides)
    return body


def to_cqc(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"to_org": "cqc", "topic": "other"}
    body.update(overrides)
    return body


def failure(reason: str = "wait_threshold_exceeded", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"reason": reason, "caller": dict(CALLER)}
    body.update(overrides)
    return body


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


async def failed_transfer(client: Any, key: Any, now: datetime) -> dict[str, Any]:
    """A CQC adviser's transfer to LGSCO that failed on busy lines: the transfer's JSON."""
    started = await client.post("/v1/transfers", json=to_lgsco(now), headers=key.headers)
    assert started.status_code == 201, started.text
    failed = await client.post(
        f"/v1/transfers/{started.json()['id']}/failed",
        json=failure("high_call_volume"),
        headers=key.headers,
    )
    assert failed.status_code == 200, failed.text
    return dict(failed.json())


async def count(app: Any, model: Any) -> int:
    """How many rows of `model` the app's database holds."""
    async with make_sessionmaker(app.state.engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def assert_one_failed_transfer(app: Any) -> None:
    """Exactly one transfer, one call back request and one email: nothing was made twice."""
    from app.callbacks.models import CallbackRequest
    from app.outbox.models import OutboxMessage
    from app.transfers.models import Transfer

    assert await count(app, Transfer) == 1
    assert await count(app, CallbackRequest) == 1
    assert await count(app, OutboxMessage) == 1


@contextmanager
def statements_sent(app: Any) -> Iterator[list[str]]:
    """Every statement the app sends while inside (lower case): on its engine and, on
    PostgreSQL, on the side engine its side-by-side reads use."""
    statements: list[str] = []
    engines = [app.state.engine]
    if app.state.engine.dialect.name == "postgresql":
        engines.append(side_engine(app.state.engine))

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement.lower())

    for engine in engines:
        event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine.sync_engine, "before_cursor_execute", capture)
