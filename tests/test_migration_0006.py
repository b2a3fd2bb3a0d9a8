"""Migration 0006_outbox_kinds: the outbox rows of a database at 0005 keep their kind and get
the id they pointed at as `subject_id` (and the way back), on SQLite and on PostgreSQL."""

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import make_url

from app.core.database import make_engine
from app.core.migrate import alembic_config, upgrade
from tests.conftest import sqlite_url

PG_URL = os.environ.get("TEST_DATABASE_URL")
NOW = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
KEY, TRANSFER, CALLBACK, FEEDBACK = (uuid.uuid4() for _ in range(4))
TO_CALLBACK, TO_FEEDBACK = uuid.uuid4(), uuid.uuid4()


def _type(name: str, value: object) -> sa.types.TypeEngine:  # type: ignore[type-arg]
    if isinstance(value, uuid.UUID) or name in ("callback_request_id", "feedback_id"):
        return sa.Uuid()
    if isinstance(value, int):
        return sa.Integer()
    if isinstance(value, datetime):
        return sa.DateTime(timezone=True)
    if isinstance(value, list):
        return sa.JSON()
    return sa.String()


def _insert(connection: sa.Connection, name: str, *rows: dict[str, object]) -> None:
    table = sa.table(name, *(sa.column(k, _type(k, v)) for k, v in rows[0].items()))
    connection.execute(table.insert(), list(rows))


def _columns(connection: sa.Connection) -> set[str]:
    return {c["name"] for c in sa.inspect(connection).get_columns("outbox_messages")}


def _seed(connection: sa.Connection) -> None:
    """A failed transfer's call back request and a feedback, each with its email, as 0005
    stored them (a foreign key column per kind)."""
    _insert(
        connection,
        "api_keys",
        {
            "id": KEY,
            "org": "cqc",
            "role": "agent",
            "name": "desk",
            "key_hash": "h" * 64,
            "key_prefix": "hk_",
            "created_at": NOW,
        },
    )
    _insert(
        connection,
        "transfers",
        {
            "id": TRANSFER,
            "from_org": "cqc",
            "to_org": "lgsco",
            "wait_started_at": NOW,
            "wait_threshold_seconds": 60,
            "status": "failed",
            "created_by_key_id": KEY,
            "created_at": NOW,
        },
    )
    _insert(
        connection,
        "callback_requests",
        {
            "id": CALLBACK,
            "transfer_id": TRANSFER,
            "from_org": "cqc",
            "to_org": "lgsco",
            "reason": "high_call_volume",
            "sender_reference": "CQC-1",
            "permission_to_share_at": NOW,
            "mailbox": "intake@lgo.org.uk",
            "requested_at": NOW,
            "created_by_key_id": KEY,
            "created_at": NOW,
        },
    )
    _insert(
        connection,
        "feedback",
        {
            "id": FEEDBACK,
            "from_org": "cqc",
            "about_org": "lgsco",
            "case_references": ["C-1"],
            "reason_for_contact": "r",
            "names_and_times": "n",
            "correct_advice": "c",
            "suggested_action": "s",
            "mailbox": "x@lgo.org.uk",
            "submitted_at": NOW,
            "created_by_key_id": KEY,
        },
    )
    common = {
        "status": "sent",
        "attempts": 1,
        "next_attempt_at": NOW,
        "sent_at": NOW,
        "created_at": NOW,
    }
    _insert(
        connection,
        "outbox_messages",
        *[
            {
                "id": TO_CALLBACK,
                "kind": "callback_request",
                "callback_request_id": CALLBACK,
                "feedback_id": None,
                "to_address": "intake@lgo.org.uk",
                "message_id": f"<{TO_CALLBACK}@example.org>",
                **common,
            },
            {
                "id": TO_FEEDBACK,
                "kind": "feedback",
                "callback_request_id": None,
                "feedback_id": FEEDBACK,
                "to_address": "x@lgo.org.uk",
                "message_id": f"<{TO_FEEDBACK}@example.org>",
                **common,
            },
        ],
    )


def _outbox(connection: sa.Connection) -> tuple[set[str], dict[uuid.UUID, tuple]]:  # type: ignore[type-arg]
    columns = _columns(connection)
    ids = [n for n in ("subject_id", "callback_request_id", "feedback_id") if n in columns]
    table = sa.table(
        "outbox_messages",
        sa.column("id", sa.Uuid()),
        *(sa.column(n, sa.String()) for n in ("kind", "message_id", "status")),
        *(sa.column(n, sa.Uuid()) for n in ids),
    )
    rows = connection.execute(sa.select(*table.c)).all()
    return columns, {row[0]: tuple(row[1:]) for row in rows}


def _run(url: str, work) -> object:  # type: ignore[no-untyped-def]
    async def go() -> object:
        engine = make_engine(url)
        try:
            async with engine.begin() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _unique_violation(connection: sa.Connection) -> None:
    second = uuid.uuid4()
    _insert(
        connection,
        "outbox_messages",
        {
            "id": second,
            "kind": "feedback",
            "subject_id": FEEDBACK,
            "to_address": "x@lgo.org.uk",
            "message_id": f"<{second}@example.org>",
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": NOW,
            "created_at": NOW,
        },
    )


def _check_upgrade_and_back(url: str) -> None:
    upgrade(url, "0005_http")
    _run(url, _seed)

    upgrade(url, "0006_outbox_kinds")
    columns, rows = _run(url, _outbox)  # type: ignore[misc]
    assert {"callback_request_id", "feedback_id"} & columns == set()
    assert rows == {
        TO_CALLBACK: ("callback_request", f"<{TO_CALLBACK}@example.org>", "sent", CALLBACK),
        TO_FEEDBACK: ("feedback", f"<{TO_FEEDBACK}@example.org>", "sent", FEEDBACK),
    }
    with pytest.raises(sa.exc.IntegrityError):  # one message per kind and record, as before
        _run(url, _unique_violation)

    command.downgrade(alembic_config(url), "0005_http")
    columns, rows = _run(url, _outbox)  # type: ignore[misc]
    assert "subject_id" not in columns
    assert rows == {
        TO_CALLBACK: ("callback_request", f"<{TO_CALLBACK}@example.org>", "sent", CALLBACK, None),
        TO_FEEDBACK: ("feedback", f"<{TO_FEEDBACK}@example.org>", "sent", None, FEEDBACK),
    }


@pytest.mark.database_independent
def test_0006_moves_each_message_to_kind_and_subject_on_sqlite(tmp_path: Path) -> None:
    _check_upgrade_and_back(sqlite_url(tmp_path / "old.db"))


@pytest.fixture
def scratch_pg() -> Iterator[str]:
    """A PostgreSQL database of its own (the test database is shared and at head)."""
    if not PG_URL:
        pytest.skip("needs TEST_DATABASE_URL (PostgreSQL)")
    name = f"{make_url(PG_URL).database}_m0006_{uuid.uuid4().hex[:8]}"

    def admin(sql: str) -> None:
        async def go() -> None:
            engine = make_engine(PG_URL)  # type: ignore[arg-type]
            try:
                async with engine.connect() as connection:
                    await connection.execution_options(isolation_level="AUTOCOMMIT")
                    await connection.execute(sa.text(sql))
            finally:
                await engine.dispose()

        asyncio.run(go())

    admin(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        admin(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_0006_moves_each_message_to_kind_and_subject_on_postgresql(scratch_pg: str) -> None:
    _check_upgrade_and_back(scratch_pg)
