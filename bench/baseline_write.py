"""The bare baseline for benchmark 1: Starlette + asyncpg doing the same four INSERTs.

No validation, no authentication lookup, no ORM: it reads the JSON body, writes the transfer,
its call back request, the caller's details and the outbox row in one transaction, and
answers 201 with the new ids. Served by `uvicorn bench.baseline_write:app` with the project's
uvicorn settings. Environment: BENCH_DATABASE_URL (asyncpg DSN), BENCH_KEY_ID (an api_keys id
for created_by_key_id), BENCH_MAILBOX.
"""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

INSERT_TRANSFER = """
INSERT INTO transfers (id, from_org, to_org, topic, ivr_option, sender_reference,
    wait_started_at, wait_threshold_seconds, permission_to_share_at, status, connected_at,
    failed_at, failure_reason, outcome_at, created_by_key_id, created_at)
VALUES ($1, 'cqc', $2, NULL, NULL, $3, $4, 60, $5, 'failed', NULL, $4, $6, $4, $7, $4)
"""
INSERT_CALLBACK = """
INSERT INTO callback_requests (id, transfer_id, from_org, to_org, reason, sender_reference,
    permission_to_share_at, mailbox, requested_at, created_by_key_id, created_at)
VALUES ($1, $2, 'cqc', $3, $4, $5, $6, $7, $8, $9, $8)
"""
INSERT_CALLER = """
INSERT INTO caller_details (callback_request_id, name, contact_number, provider)
VALUES ($1, $2, $3, $4)
"""
INSERT_OUTBOX = """
INSERT INTO outbox_messages (id, kind, subject_id, to_address, message_id, status,
    attempts, next_attempt_at, created_at)
VALUES ($1, 'callback_request', $2, $3, $4, 'pending', 0, $5, $5)
"""

KEY_ID = uuid.UUID(os.environ.get("BENCH_KEY_ID", str(uuid.UUID(int=0))))
MAILBOX = os.environ.get("BENCH_MAILBOX", "intake@example.org")


async def create(request: Request) -> JSONResponse:
    body = await request.json()
    outcome, caller = body["outcome"], body["outcome"]["caller"]
    now = datetime.now(UTC)
    permission = datetime.fromisoformat(body["permission_to_share_at"])
    transfer_id, callback_id, outbox_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as connection, connection.transaction():
        await connection.execute(
            INSERT_TRANSFER,
            transfer_id,
            body["to_org"],
            body["sender_reference"],
            now,
            permission,
            outcome["reason"],
            KEY_ID,
        )
        await connection.execute(
            INSERT_CALLBACK,
            callback_id,
            transfer_id,
            body["to_org"],
            outcome["reason"],
            body["sender_reference"],
            permission,
            MAILBOX,
            now,
            KEY_ID,
        )
        await connection.execute(
            INSERT_CALLER, callback_id, caller["name"], caller["contact_number"], caller["provider"]
        )
        await connection.execute(
            INSERT_OUTBOX, outbox_id, callback_id, MAILBOX, f"<{outbox_id}@localhost>", now
        )
    return JSONResponse(
        {"id": str(transfer_id), "status": "failed", "callback_request_id": str(callback_id)},
        status_code=201,
    )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    # The project's SQLAlchemy pool holds 5 connections and overflows to 15: the same here.
    dsn = os.environ["BENCH_DATABASE_URL"].replace("postgresql+asyncpg://", "postgresql://")
    app.state.pool = await asyncpg.create_pool(dsn, min_size=5, max_size=15)
    yield
    await app.state.pool.close()


app = Starlette(routes=[Route("/v1/transfers", create, methods=["POST"])], lifespan=lifespan)
