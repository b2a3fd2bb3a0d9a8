"""The audit trail: every create, publication, key change and purge leaves one row saying who
(key id, `cli` or `system`), what, which record and when, readable by the body's admins only."""

import asyncio
import json
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select
from typer.testing import CliRunner

from app.audit.models import AuditEvent
from app.cli import cli
from app.core.clock import FixedClock
from app.core.settings import Settings, get_settings
from tests.conftest import Key, Keys
from tests.helpers import CALLER, assert_problem, failure, iso, to_lgsco
from tests.test_signposts_feedback import FEEDBACK

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths

Row = tuple[str, str | None, str, str, str]  # actor, actor key, action, record type, record id


async def audit_page(client: httpx.AsyncClient, key: Key, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/audit", params=params, headers=key.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def rows(page: dict[str, Any]) -> list[Row]:
    return [
        (i["actor"], i["actor_key_id"], i["action"], i["record_type"], i["record_id"])
        for i in page["items"]
    ]


async def count_audit_rows(app) -> int:  # type: ignore[no-untyped-def]
    async with app.state.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(AuditEvent)) or 0


def cli_keys(settings: Settings, *args: str) -> str:
    get_settings.cache_clear()
    env = {"HANDOFF_DATABASE_URL": settings.database_url}
    try:
        result = CliRunner().invoke(cli, ["keys", *args], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output


async def test_every_change_is_audited_and_shown_to_the_bodys_admins_only(
    app,
    client: httpx.AsyncClient,
    settings: Settings,
    clock: FixedClock,
    key_factory: Keys,
    cqc_agent: Key,
    cqc_leader: Key,
) -> None:
    admin = await key_factory.make("cqc", "admin", "cqc admin")
    lgsco_admin = await key_factory.make("lgsco", "admin", "lgsco admin")
    since = clock.now() + timedelta(seconds=1)
    expected: list[Row] = []

    def step() -> None:
        clock.advance(1)  # one second apart, so that newest-first is one order

    def by(key: Key, action: str, record_type: str, record_id: Any) -> None:
        expected.append(("key", str(key.id), action, record_type, str(record_id)))

    step()
    made = await client.post(
        "/v1/keys", json={"role": "agent", "name": "desk 9"}, headers=admin.headers
    )
    by(admin, "create", "api_key", made.json()["id"])

    step()  # the integration's one-request failure: the one-statement path on PostgreSQL
    started = clock.now() - timedelta(seconds=5)
    one = await client.post(
        "/v1/transfers",
        json=to_lgsco(
            started,
            wait_started_at=iso(started),
            outcome={"status": "failed", **failure("high_call_volume")},
        ),
        headers=cqc_agent.headers,
    )
    assert one.status_code == 201, one.text
    by(cqc_agent, "create", "transfer", one.json()["id"])
    by(cqc_agent, "create", "callback_request", one.json()["callback_request_id"])

    step()  # started, then failed in a second call
    two = await client.post("/v1/transfers", json=to_lgsco(clock.now()), headers=cqc_agent.headers)
    by(cqc_agent, "create", "transfer", two.json()["id"])
    step()
    failed = await client.post(
        f"/v1/transfers/{two.json()['id']}/failed",
        json=failure("high_call_volume"),
        headers=cqc_agent.headers,
    )
    by(cqc_agent, "create", "callback_request", failed.json()["callback_request_id"])

    step()
    signpost = await client.post(
        "/v1/signposts", json={"to_org": "lgsco"}, headers=cqc_agent.headers
    )
    by(cqc_agent, "create", "signpost", signpost.json()["id"])

    step()
    feedback = await client.post("/v1/feedback", json=FEEDBACK, headers=cqc_agent.headers)
    by(cqc_agent, "create", "feedback", feedback.json()["id"])

    step()
    published = await client.post(
        "/v1/reports/contact-volumes/2026-10/publish",
        json={"fluctuation_note": "A quiet month."},
        headers=cqc_leader.headers,
    )
    assert published.status_code == 201, published.text
    publications = await client.get(
        "/v1/reports/contact-volumes/2026-10", headers=cqc_leader.headers
    )
    [version] = publications.json()["versions"]
    by(cqc_leader, "sign", "report_publication", version["id"])

    step()
    await client.post(f"/v1/keys/{made.json()['id']}/revoke", headers=admin.headers)
    by(admin, "revoke", "api_key", made.json()["id"])
    step()  # revoking it again changes nothing, so it is not audited
    await client.post(f"/v1/keys/{made.json()['id']}/revoke", headers=admin.headers)

    # An operator at the command line (on the real clock, so checked apart from the rest).
    output = await asyncio.to_thread(
        cli_keys, settings, "create", "--org", "cqc", "--role", "agent", "--name", "desk 10"
    )
    cli_key = re.search(r"id:\s+(\S+)", output).group(1)  # type: ignore[union-attr]
    await asyncio.to_thread(cli_keys, settings, "revoke", cli_key)

    shown = await audit_page(
        client, admin, since=iso(since), until=iso(clock.now() + timedelta(seconds=1))
    )
    # Newest first; the transfer and call back request made by one request share a moment.
    assert sorted(rows(shown)) == sorted(expected)
    moments = [item["at"] for item in shown["items"]]
    assert moments == sorted(moments, reverse=True)
    assert rows(shown)[0] == expected[-1] and rows(shown)[-1] == expected[0]
    assert all(item["org"] == "cqc" for item in shown["items"])
    assert shown["next_cursor"] is None
    by_cli = rows(await audit_page(client, admin, record_type="api_key"))
    assert ("cli", None, "create", "api_key", cli_key) in by_cli
    assert ("cli", None, "revoke", "api_key", cli_key) in by_cli

    # The other body's admin sees none of it, and CQC's admin none of theirs.
    theirs = await audit_page(client, lgsco_admin, limit=100)
    assert {item["org"] for item in theirs["items"]} == {"lgsco"}
    assert not {r[4] for r in rows(theirs)} & {r[4] for r in expected}
    assert str(lgsco_admin.id) not in {
        r[4] for r in rows(await audit_page(client, admin, limit=100))
    }

    # No personal data in the audit table, whatever the column.
    async with app.state.sessionmaker() as session:
        stored = json.dumps(
            [
                {c.key: getattr(e, c.key) for c in AuditEvent.__table__.columns}
                for e in (await session.scalars(select(AuditEvent))).all()
            ],
            default=str,
        )
    for value in (*CALLER.values(), "+447911123456", "Lovelace", "Sunrise"):
        assert value not in stored


async def test_a_refused_change_writes_no_audit_row(
    app,
    client: httpx.AsyncClient,
    clock: FixedClock,
    key_factory: Keys,
    cqc_agent: Key,
    cqc_leader: Key,
) -> None:
    admin = await key_factory.make("cqc", "admin")
    before = await count_audit_rows(app)

    open_month = await client.post(
        "/v1/reports/contact-volumes/2026-11/publish",
        json={"fluctuation_note": "Too early."},
        headers=cqc_leader.headers,
    )
    assert_problem(open_month, 409, "month_not_ended")
    no_permission = await client.post(
        "/v1/transfers",
        json=to_lgsco(clock.now(), permission_to_share_at=None),
        headers=cqc_agent.headers,
    )
    assert no_permission.status_code == 422
    unknown_key = await client.post(f"/v1/keys/{uuid.uuid4()}/revoke", headers=admin.headers)
    assert_problem(unknown_key, 404, "not_found")

    assert await count_audit_rows(app) == before


async def test_the_audit_trail_pages_with_cursors_and_filters(
    client: httpx.AsyncClient, clock: FixedClock, key_factory: Keys, cqc_agent: Key
) -> None:
    admin = await key_factory.make("cqc", "admin")
    made = []
    for _ in range(7):
        clock.advance(1)
        response = await client.post(
            "/v1/signposts", json={"to_org": "lgsco"}, headers=cqc_agent.headers
        )
        made.append(response.json()["id"])

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"record_type": "signpost", "action": "create", "limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = await audit_page(client, admin, **params)
        seen += [item["record_id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and seen == made[::-1]

    assert (await audit_page(client, admin, action="purge"))["items"] == []
    later = await audit_page(client, admin, record_type="signpost", since=iso(clock.now()))
    assert [item["record_id"] for item in later["items"]] == [made[-1]]

    too_many = await client.get("/v1/audit", params={"limit": 101}, headers=admin.headers)
    assert too_many.status_code == 422
    bad_cursor = await client.get("/v1/audit", params={"cursor": "nope"}, headers=admin.headers)
    assert_problem(bad_cursor, 422, "invalid_cursor")
    naive = await client.get(
        "/v1/audit", params={"since": "2026-11-10T10:00:00"}, headers=admin.headers
    )
    assert naive.status_code == 422
    unknown_action = await client.get(
        "/v1/audit", params={"action": "delete"}, headers=admin.headers
    )
    assert unknown_action.status_code == 422


async def test_only_admins_read_the_audit_trail(
    client: httpx.AsyncClient, cqc_agent: Key, cqc_leader: Key
) -> None:
    for key in (cqc_agent, cqc_leader):
        assert_problem(await client.get("/v1/audit", headers=key.headers), 403, "insufficient_role")
    anonymous = await client.get("/v1/audit")
    assert_problem(anonymous, 401, "unauthenticated")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")


async def test_a_one_request_failure_writes_its_audit_rows_without_another_round_trip(
    app, client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, is_postgres: bool
) -> None:
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    started = clock.now() - timedelta(seconds=5)
    body = to_lgsco(
        started, wait_started_at=iso(started), outcome={"status": "failed", **failure()}
    )
    body["outcome"]["reason"] = "high_call_volume"
    event.listen(app.state.engine.sync_engine, "before_cursor_execute", seen)
    try:
        response = await client.post("/v1/transfers", json=body, headers=cqc_agent.headers)
    finally:
        event.remove(app.state.engine.sync_engine, "before_cursor_execute", seen)
    assert response.status_code == 201, response.text

    writes = [s for s in statements if re.match(r"\s*(WITH|INSERT|UPDATE)", s)]
    if is_postgres:
        [one] = writes
        assert one.count("INSERT INTO") == 6 and "INSERT INTO audit_events" in one
    else:
        assert len(writes) == 6
    async with app.state.sessionmaker() as session:
        written = await session.scalars(
            select(AuditEvent.record_type).where(AuditEvent.actor_key_id == cqc_agent.id)
        )
        assert sorted(written) == ["callback_request", "transfer"]
