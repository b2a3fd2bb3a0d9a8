"""Benchmark 2 (and 4 for the report): the monthly contact-volume report at scale.

A scratch PostgreSQL database, migrated with the project's migrations, is seeded with set-based
SQL (`INSERT ... SELECT ... FROM generate_series`) at a steady rate of 1,000,000 contacts per
24 months, going back in time from the end of 2025: transfers connected and failed (the failed
ones with their call back request) and signposts, in both directions. It is grown to each size
in turn (100k, 1M, 5M events by default), each step adding older history (1M events are the 24
months 2024-2025; 5M reach back ten years), while the measured month, 2025-12, and its previous
month hold the same events at every size from 100k: so a time that stays flat shows that one
month's cost does not grow with the table's history.

At each size the project's `GET /v1/reports/contact-volumes/{month}` (JSON, a team leader's
key, served by the real uvicorn server, one request at a time over one kept-alive connection)
is timed against the bare SQL that computes the same figures, five asyncpg statements run one
after the other over one connection: the contacts of the month and its previous month (the
report shows both) per direction, status, reason, answered after the threshold and contact
reason; `percentile_cont` for the time to answer; the call back requests made, closed per
outcome, first attempted within the target, and open (and overdue) at each month's end; their
working times to first attempt and to close; and the feedback figures. The seeded call back
requests live as real ones do: acknowledged, first attempted within hours and closed within a
day with an outcome, but for the last two days' (still open at the month's end). The
two are timed in alternation after a warm-up, and the medians compared. A new server process
serves each size, so its peak RSS shows whether the report's memory grows with the events.
"""

import asyncio
import statistics
import time
from datetime import UTC, datetime

import asyncpg
import httpx

from bench.common import (
    Config,
    Result,
    asyncpg_dsn,
    make_key,
    median,
    scratch_database,
    serving,
)

PROJECT_APP = "app.asgi:app"
END = datetime(2026, 1, 1, tzinfo=UTC)  # the newest event is just before; GMT, so UK = UTC
# 1,000,000 events per 24 months (2024-01-01 .. 2026-01-01): seconds between two events.
SPACING_SECONDS = (END - datetime(2024, 1, 1, tzinfo=UTC)).total_seconds() / 1_000_000
MEASURED_MONTH = "2025-12"  # it and 2025-11 are full from 100k events (73 days) on

# One row of generate_series per event, numbered globally (`i`) from the newest back, so that each
# growth step adds older history. Of every 10 events: 5 transfers connected, 2 failed
# (wait threshold exceeded), 1 failed (high call volume), 2 signposts; direction alternates by
# tens. Ids are made from `i` (ordered, so the primary keys grow at their right edge, which keeps
# seeding quick; the report never reads them).
_EVENTS = """
WITH g AS (
    SELECT i,
           $3::timestamptz - (i - 0.5) * $4::float8 * interval '1 second' AS at,
           i % 10 AS k,
           CASE WHEN (i / 10) % 2 = 0 THEN 'cqc' ELSE 'lgsco' END AS from_org,
           CASE WHEN (i / 10) % 2 = 0 THEN 'lgsco' ELSE 'cqc' END AS to_org
    FROM generate_series($1::bigint + 1, $2::bigint) AS i
)
"""
SEED_TRANSFERS = (
    _EVENTS
    + """
INSERT INTO transfers (id, from_org, to_org, sender_reference, wait_started_at,
    wait_threshold_seconds, permission_to_share_at, status, connected_at, failed_at,
    failure_reason, outcome_at, answered_after_threshold, contact_reason,
    created_by_key_id, created_at)
SELECT lpad(to_hex(i), 32, '0')::uuid, from_org, to_org, 'REF-' || i,
       at - (5 + i % 71) * interval '1 s', 60, at - interval '80 s',
       CASE WHEN k < 5 THEN 'connected' ELSE 'failed' END,
       CASE WHEN k < 5 THEN at END,
       CASE WHEN k >= 5 THEN at END,
       CASE WHEN k IN (5, 6) THEN 'wait_threshold_exceeded'
            WHEN k = 7 THEN 'high_call_volume' END,
       at, k < 5 AND 5 + i % 71 > 60, """
    + "CASE i % 3 WHEN 0 THEN 'delay' WHEN 1 THEN 'safeguarding' END"
    + """,
       $5, at - (5 + i % 71) * interval '1 s'
FROM g WHERE k < 8
"""
)
# Call back requests as a receiving team leaves them: acknowledged, first attempted (at 1 to 3
# working hours) and closed by the next day, with their working times, but for those of the
# last two days before the newest event, still open. So "open at the month's end" has a steady
# number of requests to count at every size, and every call back figure has rows behind it.
SEED_CALLBACKS = (
    _EVENTS
    + """
INSERT INTO callback_requests (id, transfer_id, from_org, to_org, reason, sender_reference,
    permission_to_share_at, mailbox, requested_at, created_by_key_id, created_at,
    first_attempt_due_at, close_due_at, state, outcome, version, acknowledged_at,
    acknowledged_by_key_id, first_attempt_at, first_attempt_working_seconds, closed_at,
    closed_by_key_id, close_working_seconds)
SELECT ('1' || lpad(to_hex(i), 31, '0'))::uuid, lpad(to_hex(i), 32, '0')::uuid, from_org,
       to_org, CASE WHEN k = 7 THEN 'high_call_volume' ELSE 'wait_threshold_exceeded' END,
       'REF-' || i, at - interval '45 s', 'intake@example.org', at, $5::uuid, at,
       at + interval '4 hours', at + interval '16 hours',
       CASE WHEN open THEN 'requested' ELSE 'closed' END,
       CASE WHEN NOT open THEN (ARRAY['reached', 'reached', 'unreachable', 'withdrawn'])[1 + i % 4]
       END,
       CASE WHEN open THEN 1 ELSE 4 END,
       CASE WHEN NOT open THEN at + interval '30 minutes' END,
       CASE WHEN NOT open THEN $5::uuid END,
       CASE WHEN NOT open THEN at + (60 + i % 121) * interval '1 minute' END,
       CASE WHEN NOT open THEN (60 + i % 121) * 60.0 END,
       CASE WHEN NOT open THEN at + (18 + i % 7) * interval '1 hour' END,
       CASE WHEN NOT open THEN $5::uuid END,
       CASE WHEN NOT open THEN (6 + i % 7) * 3600.0 END
FROM (SELECT *, at >= $3::timestamptz - interval '2 days' AS open FROM g) AS g
WHERE k IN (5, 6, 7)
"""
)
SEED_SIGNPOSTS = (
    _EVENTS
    + """
INSERT INTO signposts (id, from_org, to_org, signposted_at, sender_reference,
    contact_reason, created_by_key_id, created_at)
SELECT lpad(to_hex(i), 32, '0')::uuid, from_org, to_org, at, 'REF-' || i,
       CASE WHEN i % 2 = 0 THEN 'delay' END, $5, at
FROM g WHERE k >= 8
"""
)


def _at_each_month_end(select: str) -> str:
    """The SELECT once per month end ($2 the previous month's, $3 this one's), joined by
    UNION ALL: one moment per statement, as the report counts open records, so each can read
    the open-records partial indexes."""
    return "UNION ALL".join(
        select.format(at=at, this_month=this_month)
        for at, this_month in (("$2", "false"), ("$3", "true"))
    )


# The baseline: the figures the report computes, as bare SQL ($1 the previous month's start,
# $2 the measured month's, $3 its end; the report shows both months). First the contacts per
# direction, status, reason, answered after the threshold and contact reason...
BASELINE_COUNTS = """
SELECT 'transfer' AS kind, from_org, to_org, status, failure_reason AS reason,
       answered_after_threshold AS late, contact_reason,
       outcome_at >= $2 AS this_month, count(*) AS n
FROM transfers WHERE outcome_at >= $1 AND outcome_at < $3
GROUP BY from_org, to_org, status, failure_reason, answered_after_threshold, contact_reason,
         this_month
UNION ALL
SELECT 'signpost', from_org, to_org, NULL, NULL, NULL, contact_reason,
       signposted_at >= $2 AS this_month, count(*)
FROM signposts WHERE signposted_at >= $1 AND signposted_at < $3
GROUP BY from_org, to_org, contact_reason, this_month
"""
# ... the median and 90th percentile seconds to answer of the connected transfers...
BASELINE_ANSWER_TIMES = """
SELECT from_org, to_org, outcome_at >= $2 AS this_month,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY seconds)
FROM (SELECT from_org, to_org, outcome_at,
             extract(epoch FROM connected_at - wait_started_at) AS seconds
      FROM transfers WHERE outcome_at >= $1 AND outcome_at < $3 AND status = 'connected') AS t
GROUP BY from_org, to_org, this_month
"""
# ... the call back requests made, closed (per outcome) and first attempted (within the
# target or not) per month, and open (and overdue) at each month's end...
BASELINE_CALLBACK_COUNTS = """
SELECT 'made' AS what, from_org, to_org, NULL AS outcome, requested_at >= $2 AS this_month,
       count(*) AS n, NULL::bigint AS more
FROM callback_requests WHERE requested_at >= $1 AND requested_at < $3
GROUP BY from_org, to_org, this_month
UNION ALL
SELECT 'closed', from_org, to_org, outcome, closed_at >= $2, count(*), NULL
FROM callback_requests WHERE closed_at >= $1 AND closed_at < $3
GROUP BY from_org, to_org, outcome, closed_at >= $2
UNION ALL
SELECT 'first attempts', from_org, to_org, NULL, first_attempt_at >= $2, count(*),
       count(*) FILTER (WHERE first_attempt_at <= first_attempt_due_at)
FROM callback_requests WHERE first_attempt_at >= $1 AND first_attempt_at < $3
GROUP BY from_org, to_org, first_attempt_at >= $2
UNION ALL
""" + _at_each_month_end(
    """
SELECT 'open', from_org, to_org, NULL, {this_month}, count(*),
       count(*) FILTER (WHERE (first_attempt_due_at < {at}
                               AND (first_attempt_at IS NULL OR first_attempt_at >= {at}))
                              OR close_due_at < {at})
FROM callback_requests WHERE requested_at < {at} AND (closed_at IS NULL OR closed_at >= {at})
GROUP BY from_org, to_org
"""
)
# ... their working seconds to the first attempt and to closing (median, 90th percentile)...
BASELINE_CALLBACK_TIMES = """
SELECT 'first attempt' AS what, from_org, to_org, first_attempt_at >= $2 AS this_month,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY first_attempt_working_seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY first_attempt_working_seconds)
FROM callback_requests WHERE first_attempt_at >= $1 AND first_attempt_at < $3
  AND first_attempt_working_seconds IS NOT NULL
GROUP BY from_org, to_org, this_month
UNION ALL
SELECT 'close', from_org, to_org, closed_at >= $2,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY close_working_seconds),
       percentile_cont(0.9) WITHIN GROUP (ORDER BY close_working_seconds)
FROM callback_requests WHERE closed_at >= $1 AND closed_at < $3
  AND close_working_seconds IS NOT NULL
GROUP BY from_org, to_org, closed_at >= $2
"""
# ... and the feedback figures per body it is about: received, answered, not answered at
# each month's end, median working days to answer (the bench seeds no feedback: cheap here).
BASELINE_FEEDBACK = """
SELECT 'received' AS what, about_org, submitted_at >= $2 AS this_month, count(*)::float8 AS n
FROM feedback WHERE submitted_at >= $1 AND submitted_at < $3 GROUP BY about_org, this_month
UNION ALL
SELECT 'answered', about_org, responded_at >= $2, count(*)
FROM feedback WHERE responded_at >= $1 AND responded_at < $3 GROUP BY about_org, 3
UNION ALL
SELECT 'median days', about_org, responded_at >= $2,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY response_working_days)
FROM feedback WHERE responded_at >= $1 AND responded_at < $3
  AND response_working_days IS NOT NULL
GROUP BY about_org, 3
UNION ALL
""" + _at_each_month_end(
    """
SELECT 'open', about_org, {this_month}, count(*)
FROM feedback WHERE submitted_at < {at} AND (responded_at IS NULL OR responded_at >= {at})
GROUP BY about_org
"""
)
BASELINE = (
    BASELINE_COUNTS,
    BASELINE_ANSWER_TIMES,
    BASELINE_CALLBACK_COUNTS,
    BASELINE_CALLBACK_TIMES,
    BASELINE_FEEDBACK,
)


async def seed(db_url: str, have: int, want: int, key_id: object) -> float:
    """Add events number have+1 .. want; returns the seconds it took (VACUUM ANALYZE included)."""
    started = time.perf_counter()
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    try:
        async with connection.transaction():
            for statement in (SEED_TRANSFERS, SEED_CALLBACKS, SEED_SIGNPOSTS):
                await connection.execute(statement, have, want, END, SPACING_SECONDS, key_id)
        # Fresh statistics and visibility map, as autovacuum would leave them in production.
        await connection.execute("VACUUM ANALYZE transfers, signposts, callback_requests")
    finally:
        await connection.close()
    return time.perf_counter() - started


async def _time_side_by_side(
    db_url: str, server_url: str, secret: str, config: Config
) -> tuple[list[float], list[float], int]:
    """Milliseconds per report (project) and per statement (baseline), in alternation."""
    from app.core.months import Month

    month = Month.parse(MEASURED_MONTH)
    first, _ = month.previous().utc_range()
    middle, end = month.utc_range()
    connection = await asyncpg.connect(asyncpg_dsn(db_url))
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json"}
    path = f"/v1/reports/contact-volumes/{month}"
    project: list[float] = []
    baseline: list[float] = []
    counted = 0
    try:
        async with httpx.AsyncClient(base_url=server_url, headers=headers, timeout=300) as client:
            for attempt in range(config.report_warmup + config.report_repeats):
                started = time.perf_counter()
                response = await client.get(path)
                took_project = time.perf_counter() - started
                response.raise_for_status()
                started = time.perf_counter()
                rows = await connection.fetch(BASELINE_COUNTS, first, middle, end)
                for statement in BASELINE[1:]:
                    await connection.fetch(statement, first, middle, end)
                took_baseline = time.perf_counter() - started
                if attempt < config.report_warmup:
                    continue
                project.append(1000 * took_project)
                baseline.append(1000 * took_baseline)
                counted = sum(r["n"] for r in rows if r["this_month"])
                shown = response.json()["totals"]["this_month"]["total_contacts"]
                if shown != counted:
                    raise RuntimeError(f"the report shows {shown} contacts, the SQL {counted}")
    finally:
        await connection.close()
    return project, baseline, counted


def _label(events: int) -> str:
    if events >= 1_000_000:
        return f"{events / 1e6:g}M"
    return f"{events / 1e3:g}k" if events >= 1000 else str(events)


def run(config: Config) -> list[Result]:
    results: list[Result] = []
    rss: dict[str, list[float]] = {}
    with scratch_database(config.db_url, "rp") as db_url:
        key_id, secret = make_key(db_url, "team_leader")
        have = 0
        for events in sorted(config.report_sizes):
            took = asyncio.run(seed(db_url, have, events, key_id))
            print(f"report: seeded {events - have} events in {took:.1f} s", flush=True)
            have = events
            env = {"HANDOFF_DATABASE_URL": db_url, "HANDOFF_OUTBOX_WORKER_ENABLED": "false"}
            with serving(PROJECT_APP, 1, env) as server:
                project, baseline, counted = asyncio.run(
                    _time_side_by_side(db_url, server.url, secret, config)
                )
                rss[_label(events)] = [server.peak_rss_mib()]
            results.append(
                Result(
                    benchmark="report",
                    metric=f"ms/report, {_label(events)} ev, {counted} in month",
                    unit="ms",
                    project=median(project),
                    baseline=median(baseline),
                    target="<= 1.25x (0.8x the speed)",
                    higher_is_better=False,
                    runs={
                        "project": project,
                        "baseline": baseline,
                        "project_stdev": [statistics.pstdev(project)],
                        "baseline_stdev": [statistics.pstdev(baseline)],
                    },
                )
            )
    smallest, largest = min(config.report_sizes), max(config.report_sizes)
    results.append(
        Result(
            benchmark="report_memory",
            metric=f"peak RSS at {_label(largest)} (base: {_label(smallest)})",
            unit="MiB",
            project=rss[_label(largest)][0],
            baseline=rss[_label(smallest)][0],
            target="~1x: must not grow with events",
            higher_is_better=False,
            runs=rss,
        )
    )
    return results
