"""Benchmark 5: the receiving body's call back list and an acknowledge + attempt, at scale.

A scratch PostgreSQL database, migrated with the project's migrations, is seeded with set-based
SQL (`INSERT ... SELECT ... FROM generate_series`) with call back requests from CQC to LGSCO
(each with its failed transfer and its caller's details; 9 in 10 closed, 1 in 10 still
requested), grown to each size in turn (10k, then 1M by default).

At each size, one request at a time over one kept-alive connection to the real uvicorn
server, each timed against bare asyncpg SQL doing the same work, in alternation after a
warm-up, medians compared:

- **list**: `GET /v1/callbacks?direction=incoming&limit=50` with an LGSCO agent's key (the
  first page, most urgent first), against the same join (request, caller's details, email)
  ordered by `close_due_at, id` with LIMIT 51, plus the page's attempts;
- **acknowledge + attempt**: `POST .../acknowledge` then `POST .../attempts` (no answer) on an
  open request, a different one each time, against two bare transactions doing the same
  writes: the row locked, the conditional UPDATE on its version, the attempt row (with a count
  of the earlier ones) and the audit rows.

The list must not grow with the table: its time at the largest size is also compared with the
smallest (`callbacks_list_growth`). The plan of the list's statement at each size is printed
(EXPLAIN ANALYZE): the profile of where its time goes.
"""

import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime

import asyncpg
import httpx

from bench.common import Config, Result, asyncpg_dsn, make_key, median, scratch_database, serving

PROJECT_APP = "app.asgi:app"
END = datetime(2026, 11, 2, tzinfo=UTC)  # the newest request is just before
SPACING_SECONDS = 120.0  # one request every two minutes, going back in time

_ROWS = """
WITH g AS (
    SELECT i, $3::timestamptz - i * $4::float8 * interval '1 second' AS at, i % 10 AS k
    FROM generate_series($1::bigint + 1, $2::bigint) AS i
)
"""
SEED_TRANSFERS = (
    _ROWS
    + """
INSERT INTO transfers (id, from_org, to_org, sender_reference, wait_started_at,
    wait_threshold_seconds, permission_to_share_at, status, failed_at, failure_reason,
    outcome_at, created_by_key_id, created_at)
SELECT lpad(to_hex(i), 32, '0')::uuid, 'cqc', 'lgsco', 'REF-' || i, at - interval '40 s', 60,
       at - interval '45 s', 'failed', at, 'high_call_volume', at, $5, at - interval '40 s'
FROM g
"""
)
SEED_CALLBACKS = (
    _ROWS
    + """
INSERT INTO callback_requests (id, transfer_id, from_org, to_org, reason, sender_reference,
    permission_to_share_at, mailbox, requested_at, created_by_key_id, created_at,
    first_attempt_due_at, close_due_at, state, outcome, closed_at, first_attempt_at,
    first_attempt_working_seconds, close_working_seconds, version)
SELECT ('1' || lpad(to_hex(i), 31, '0'))::uuid, lpad(to_hex(i), 32, '0')::uuid, 'cqc',
       'lgsco', 'high_call_volume', 'REF-' || i, at - interval '45 s', 'intake@example.org',
       at, $5, at, at + interval '4 hours', at + interval '16 hours',
       CASE WHEN k = 9 THEN 'requested' ELSE 'closed' END,
       CASE WHEN k = 9 THEN NULL ELSE 'reached' END,
       CASE WHEN k = 9 THEN NULL ELSE at + interval '3 hours' END,
       CASE WHEN k = 9 THEN NULL ELSE at + interval '1 hour' END,
       CASE WHEN k = 9 THEN NULL ELSE 3600 END,
       CASE WHEN k = 9 THEN NULL ELSE 10800 END,
       CASE WHEN k = 9 THEN 1 ELSE 3 END
FROM g
"""
)
SEED_CALLERS = (
    _ROWS
    + """
INSERT INTO caller_details (callback_request_id, name, contact_number, provider)
SELECT ('1' || lpad(to_hex(i), 31, '0'))::uuid, 'Caller ' || i,
       '+447700900' || lpad((i % 1000)::text, 3, '0'), 'Provider ' || (i % 97)
FROM g
"""
)

# The baseline list: the join the project's page reads, most urgent first, then its attempts.
BASELINE_LIST = """
SELECT r.*, d.name, d.contact_number, d.provider, m.status AS delivery_status, m.sent_at
FROM callback_requests r
LEFT JOIN caller_details d ON d.callback_request_id = r.id
LEFT JOIN outbox_messages m ON m.kind = 'callback_request' AND m.subject_id = r.id
WHERE r.to_org = 'lgsco'
ORDER BY r.close_due_at, r.id
LIMIT 51
"""
BASELINE_ATTEMPTS = """
SELECT * FROM callback_attempts WHERE callback_request_id = ANY($1::uuid[])
ORDER BY attempted_at, recorded_at, id
"""
_LOCK = (
    "SELECT id, version, state, requested_at FROM callback_requests "
    "WHERE id = $1 AND (from_org = 'lgsco' OR to_org = 'lgsco') FOR UPDATE"
)
_AUDIT = (
    "INSERT INTO audit_events (id, org, actor, actor_key_id, action, record_type, record_id, at)"
    " VALUES ($1, 'lgsco', 'key', $2, $3, 'callback_request', $4, now())"
)


async def _baseline_acknowledge_and_attempt(
    connection: asyncpg.Connection, callback_id: uuid.UUID, key_id: uuid.UUID
) -> None:
    async with connection.transaction():
        row = await connection.fetchrow(_LOCK, callback_id)
        await connection.execute(
            "UPDATE callback_requests SET state = 'acknowledged', acknowledged_at = now(), "
            "acknowledged_by_key_id = $2, version = version + 1 WHERE id = $1 AND version = $3",
            callback_id,
            key_id,
            row["version"],
        )
        await connection.execute(_AUDIT, uuid.uuid4(), key_id, "acknowledge", callback_id)
    async with connection.transaction():
        row = await connection.fetchrow(_LOCK, callback_id)
        await connection.fetchval(
            "SELECT count(*) FROM callback_attempts WHERE callback_request_id = $1 "
            "AND result <> 'reached'",
            callback_id,
        )
        await connection.execute(
            "UPDATE callback_requests SET first_attempt_at = now(), "
            "first_attempt_working_seconds = 0, version = version + 1 "
            "WHERE id = $1 AND version = $2",
            callback_id,
            row["version"],
        )
        await connection.execute(
            "INSERT INTO callback_attempts (id, callback_request_id, attempted_at, result, "
            "recorded_at, recorded_by_key_id) VALUES ($1, $2, now(), 'no_answer', now(), $3)",
            uuid.uuid4(),
            callback_id,
            key_id,
        )
        await connection.execute(_AUDIT, uuid.uuid4(), key_id, "attempt", callback_id)


async def seed(db_url: str, have: int, want: int, key_id: object) -> float:
    """Add requests number have+1 .. want; the seconds it took (VACUUM ANALYZE included)."""
    started = time.perf_counter()
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        async with connection.transaction():
            for statement in (SEED_TRANSFERS, SEED_CALLBACKS):
                await connection.execute(statement, have, want, END, SPACING_SECONDS, key_id)
            await connection.execute(SEED_CALLERS, have, want, END, SPACING_SECONDS)
        await connection.execute("VACUUM ANALYZE transfers, callback_requests, caller_details")
    finally:
        await connection.close()
    return time.perf_counter() - started


async def _open_ids(connection: asyncpg.Connection, count: int) -> list[uuid.UUID]:
    """Open requests, the newest first (so not on the list's first page: the list is timed on
    the same rows at every repeat)."""
    rows = await connection.fetch(
        "SELECT id FROM callback_requests WHERE state = 'requested' "
        "ORDER BY requested_at DESC LIMIT $1",
        count,
    )
    return [row["id"] for row in rows]


async def _time_side_by_side(
    db_url: str, server_url: str, secret: str, key_id: uuid.UUID, config: Config
) -> dict[str, list[float]]:
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json"}
    rounds = config.report_warmup + config.report_repeats
    times: dict[str, list[float]] = {
        "list_project": [],
        "list_baseline": [],
        "write_project": [],
        "write_baseline": [],
    }
    try:
        ids = await _open_ids(connection, 2 * rounds)
        async with httpx.AsyncClient(base_url=server_url, headers=headers, timeout=300) as client:
            for attempt in range(rounds):
                started = time.perf_counter()
                response = await client.get("/v1/callbacks?direction=incoming&limit=50")
                took_list = time.perf_counter() - started
                response.raise_for_status()
                started = time.perf_counter()
                rows = await connection.fetch(BASELINE_LIST)
                await connection.fetch(BASELINE_ATTEMPTS, [row["id"] for row in rows[:50]])
                took_list_baseline = time.perf_counter() - started
                if [item["id"] for item in response.json()["items"]] != [
                    str(row["id"]) for row in rows[:50]
                ]:
                    raise RuntimeError("the project's first page is not the SQL's")

                mine, bare = ids[2 * attempt], ids[2 * attempt + 1]
                started = time.perf_counter()
                for path, body in (("acknowledge", None), ("attempts", {"result": "no_answer"})):
                    answer = await client.post(
                        f"/v1/callbacks/{mine}/{path}",
                        json=body,
                        headers={"Idempotency-Key": str(uuid.uuid4())},
                    )
                    answer.raise_for_status()
                took_write = time.perf_counter() - started
                started = time.perf_counter()
                await _baseline_acknowledge_and_attempt(connection, bare, key_id)
                took_write_baseline = time.perf_counter() - started
                if attempt < config.report_warmup:
                    continue
                for name, took in (
                    ("list_project", took_list),
                    ("list_baseline", took_list_baseline),
                    ("write_project", took_write),
                    ("write_baseline", took_write_baseline),
                ):
                    times[name].append(1000 * took)
        plan = await connection.fetch("EXPLAIN (ANALYZE, BUFFERS) " + BASELINE_LIST)
        print("callbacks: plan of the list's statement:", flush=True)
        for row in plan:
            print("    " + row[0], flush=True)
    finally:
        await connection.close()
    return times


def _label(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1e6:g}M"
    return f"{count / 1e3:g}k" if count >= 1000 else str(count)


def run(config: Config) -> list[Result]:
    results: list[Result] = []
    list_medians: dict[str, float] = {}
    with scratch_database(config.db_url, "cb") as db_url:
        key_id, secret = make_key(db_url, "agent", org="lgsco")
        have = 0
        for size in sorted(config.callback_sizes):
            took = asyncio.run(seed(db_url, have, size, key_id))
            print(f"callbacks: seeded {size - have} call back requests in {took:.1f} s", flush=True)
            have = size
            env = {"HANDOFF_DATABASE_URL": db_url, "HANDOFF_OUTBOX_WORKER_ENABLED": "false"}
            with serving(PROJECT_APP, 1, env) as server:
                times = asyncio.run(_time_side_by_side(db_url, server.url, secret, key_id, config))
            label = _label(size)
            list_medians[label] = median(times["list_project"])
            for name, metric in (
                ("list", f"ms/first page, {label} requests"),
                ("write", f"ms/ack+attempt, {label} requests"),
            ):
                project, baseline = times[f"{name}_project"], times[f"{name}_baseline"]
                results.append(
                    Result(
                        benchmark=f"callbacks_{name}",
                        metric=metric,
                        unit="ms",
                        project=median(project),
                        baseline=median(baseline),
                        higher_is_better=False,
                        runs={
                            "project": project,
                            "baseline": baseline,
                            "project_stdev": [statistics.pstdev(project)],
                            "baseline_stdev": [statistics.pstdev(baseline)],
                        },
                    )
                )
    smallest, largest = _label(min(config.callback_sizes)), _label(max(config.callback_sizes))
    results.append(
        Result(
            benchmark="callbacks_list_growth",
            metric=f"ms/first page at {largest} (base: {smallest})",
            unit="ms",
            project=list_medians[largest],
            baseline=list_medians[smallest],
            target="~1x: must not grow with the table",
            higher_is_better=False,
            runs={k: [v] for k, v in list_medians.items()},
        )
    )
    return results
