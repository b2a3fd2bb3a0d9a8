"""Benchmark 1 (and 4 for the write path): a failed transfer with its call back request.

The project's side is the one-request form, the integration's hot path:
`POST /v1/transfers` with `"outcome": {"status": "failed", ...}`, which validates the body,
authenticates the API key, applies the protocol's rules and writes the transfer, the call
back request, the caller's details and the outbox row. The baseline is
`bench.baseline_write:app`. Both run under the same uvicorn settings against the same
scratch PostgreSQL database, driven by the same wrk script at the same concurrency.
"""

import json
import tempfile
from contextlib import AbstractContextManager, ExitStack, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    Config,
    Load,
    Result,
    Server,
    make_key,
    median,
    post_load,
    py_spy,
    run_sql,
    scratch_database,
)
from bench.common import serving as serve

# callback_attempts is never written here, but references callback_requests: TRUNCATE needs it.
WRITTEN = (
    "audit_events",
    "outbox_messages",
    "caller_details",
    "callback_attempts",
    "callback_requests",
    "transfers",
)
PROJECT_APP = "app.asgi:app"
BASELINE_APP = "bench.baseline_write:app"


def request_body() -> dict[str, object]:
    permission = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    return {
        "to_org": "lgsco",
        "sender_reference": "CQC-1001",
        "permission_to_share_at": permission,
        "outcome": {
            "status": "failed",
            "reason": "high_call_volume",
            "caller": {
                "name": "Ada Lovelace",
                "contact_number": "+447911123456",
                "provider": "Sunrise Care Home",
            },
        },
    }


def _truncate(db_url: str) -> None:
    run_sql(db_url, f"TRUNCATE {', '.join(WRITTEN)}")


def run(config: Config) -> list[Result]:
    from app.protocol.routes import load_table

    mailbox = load_table().route("cqc", "lgsco").callback_mailbox  # type: ignore[union-attr]
    results: list[Result] = []
    with scratch_database(config.db_url, "wp") as db_url, tempfile.TemporaryDirectory() as tmp:
        key_id, secret = make_key(db_url, "agent")
        body_file = Path(tmp) / "body.json"
        body_file.write_text(json.dumps(request_body()))
        sides = {
            "project": (
                PROJECT_APP,
                {
                    "HANDOFF_DATABASE_URL": db_url,
                    "HANDOFF_OUTBOX_WORKER_ENABLED": "false",
                    # One key sends everything: measure the write path, not the 429s.
                    "HANDOFF_RATE_LIMIT": "1000000/second",
                },
                secret,
            ),
            "baseline": (
                BASELINE_APP,
                {
                    "BENCH_DATABASE_URL": db_url,
                    "BENCH_KEY_ID": str(key_id),
                    "BENCH_MAILBOX": mailbox,
                },
                "",
            ),
        }
        for workers in config.workers:
            _truncate(db_url)
            rates: dict[str, list[float]] = {side: [] for side in sides}
            cpu_ms: dict[str, list[float]] = {side: [] for side in sides}
            with ExitStack() as stack:
                servers = {}
                for side, (app, env, auth) in sides.items():
                    servers[side] = stack.enter_context(serve(app, workers, env))
                    _load(servers[side], body_file, config.warmup, config, auth)
                # Alternate the sides run by run, so that noise from a shared machine
                # falls on both alike.
                for attempt in range(config.runs):
                    for side, (_, _, auth) in sides.items():
                        server = servers[side]
                        profiling: AbstractContextManager[None] = nullcontext()
                        if config.profile_dir and side == "project" and attempt == 0:
                            stacks = config.profile_dir / f"write_path_{workers}w.folded"
                            profiling = py_spy(server.worker_pids()[0], stacks)
                        cpu_before = server.cpu_seconds()
                        with profiling:
                            load = _load(server, body_file, config.requests, config, auth)
                        rates[side].append(load.per_second)
                        used = server.cpu_seconds() - cpu_before
                        cpu_ms[side].append(1000 * used / load.responses)
                rss = {side: server.peak_rss_mib() for side, server in servers.items()}
            results.append(
                Result(
                    benchmark="write_path",
                    metric=f"requests/s, {workers} worker{'s' if workers > 1 else ''}",
                    unit="req/s",
                    project=median(rates["project"]),
                    baseline=median(rates["baseline"]),
                    target=">= 0.5x" if workers == 1 else ">= 0.6x",
                    runs=rates,
                )
            )
            results.append(
                Result(
                    benchmark="write_path_cpu",
                    metric=f"server CPU per request, {workers}w",
                    unit="ms",
                    project=median(cpu_ms["project"]),
                    baseline=median(cpu_ms["baseline"]),
                    higher_is_better=False,
                    runs=cpu_ms,
                )
            )
            results.append(
                Result(
                    benchmark="write_path_memory",
                    metric=f"peak RSS, {workers} worker{'s' if workers > 1 else ''}",
                    unit="MiB",
                    project=rss["project"],
                    baseline=rss["baseline"],
                    higher_is_better=False,
                )
            )
        _truncate(db_url)
    return results


def _load(server: Server, body_file: Path, requests: int, config: Config, auth: str) -> Load:
    return post_load(
        f"{server.url}/v1/transfers",
        body_file,
        requests=requests,
        concurrency=config.concurrency,
        auth=auth,
    )
