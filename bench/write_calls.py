"""Benchmark 6: Python function calls per request on the write path, counted by cProfile.

The same request as Benchmark 1 (`POST /v1/transfers` with a failed outcome and the caller's
details, towards LGSCO, as a CQC agent), sent one after another over httpx's ASGI transport to
the project's app and to the bare baseline app (`bench.baseline_write:app`), each in this
process, against one scratch PostgreSQL database. Each app is profiled only from the moment
it is called until it returns (middleware, routing, validation, the protocol's rules, the ORM,
the driver, and the transport's receive and send); neither the client nor uvicorn's HTTP
parsing is counted. cProfile is deterministic: the counts do not depend on the machine's load,
so they can be compared from commit to commit where seconds cannot.

Alone, with the most called functions: `python -m bench.write_calls --db ... --detail`.
"""

import argparse
import asyncio
import cProfile
import importlib
import os
import pstats
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from bench.common import Config, Result, make_key, scratch_database
from bench.write_path import WRITTEN, request_body

Scope = MutableMapping[str, Any]


async def _count(app: Any, headers: dict[str, str], warmup: int, measured: int) -> pstats.Stats:
    """cProfile's statistics of `measured` requests to `app` (after `warmup` not counted)."""
    import httpx

    profile = cProfile.Profile()
    counting = False

    async def profiled(scope: Scope, receive: Any, send: Any) -> None:
        if counting and scope["type"] == "http":
            profile.enable()
            try:
                await app(scope, receive, send)
            finally:
                profile.disable()
        else:
            await app(scope, receive, send)

    transport = httpx.ASGITransport(app=profiled)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as client,
    ):

        async def post() -> None:
            response = await client.post("/v1/transfers", json=request_body(), headers=headers)
            if response.status_code != 201:
                raise RuntimeError(f"{response.status_code}: {response.text[:500]}")

        for _ in range(warmup):
            await post()
        counting = True
        for _ in range(measured):
            await post()
        counting = False
    return pstats.Stats(profile)


def _project_app(db_url: str) -> Any:
    from app.core.settings import Settings
    from app.main import create_app

    return create_app(
        Settings(
            database_url=db_url,
            outbox_worker_enabled=False,
            rate_limit="1000000/second",  # as in Benchmark 1: one key sends everything
            _env_file=None,  # type: ignore[call-arg]
        )
    )


def _baseline_app(db_url: str, key_id: object) -> Any:
    from app.protocol.routes import load_table

    mailbox = load_table().route("cqc", "lgsco").callback_mailbox  # type: ignore[union-attr]
    os.environ.update(
        BENCH_DATABASE_URL=db_url, BENCH_KEY_ID=str(key_id), BENCH_MAILBOX=str(mailbox)
    )
    return importlib.reload(importlib.import_module("bench.baseline_write")).app


def _calls(stats: pstats.Stats) -> int:
    return sum(ncalls for (_, ncalls, _, _, _) in stats.stats.values())  # type: ignore[attr-defined]


def _by_package(stats: pstats.Stats, measured: int, top: int) -> list[str]:
    counts: dict[str, int] = {}
    for (filename, _, _), (_, ncalls, _, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        counts[_package(filename)] = counts.get(_package(filename), 0) + ncalls
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return [f"  {count / measured:8,.0f}  {name}" for name, count in ranked]


def _details(stats: pstats.Stats, measured: int, top: int) -> list[str]:
    """The functions called most often per request, with their own time and first callers."""
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][1])  # type: ignore[attr-defined]
    lines = ["most called (calls and own microseconds per request, first callers):"]
    for (filename, line, name), (_, ncalls, tottime, _, callers) in rows[:top]:
        where = ", ".join(f"{c[2]}({Path(c[0]).name}:{c[1]})" for c in list(callers)[:3])
        here = f"{name} {Path(filename).name}:{line}"
        lines.append(
            f"  {ncalls / measured:8.1f} {tottime / measured * 1e6:7.1f}  {here}  <- {where}"
        )
    return lines


def _package(filename: str) -> str:
    if "site-packages" in filename:
        return filename.split("site-packages" + os.sep, 1)[1].split(os.sep, 1)[0]
    if filename.startswith("~"):
        return "builtins"
    if filename.startswith("<"):
        return filename
    parts = filename.split(os.sep)
    if "app" in parts:
        return "app." + parts[parts.index("app") + 1].removesuffix(".py")
    if "bench" in parts:
        return "bench." + parts[-1].removesuffix(".py")
    return "stdlib." + parts[-1].removesuffix(".py")


def measure(
    db_url: str, warmup: int, measured: int, top: int = 12, detail: bool = False
) -> tuple[float, float, list[str]]:
    """Calls per request of the project and of the baseline, and the lines to print."""
    from bench.common import run_sql

    key_id, secret = make_key(db_url, "agent")
    lines: list[str] = []
    per_request = {}
    sides: list[tuple[str, Callable[[], Any], dict[str, str]]] = [
        ("project", lambda: _project_app(db_url), {"Authorization": f"Bearer {secret}"}),
        ("baseline", lambda: _baseline_app(db_url, key_id), {}),
    ]
    for side, make_app, headers in sides:
        run_sql(db_url, f"TRUNCATE {', '.join(WRITTEN)}")
        stats = asyncio.run(_count(make_app(), headers, warmup, measured))
        per_request[side] = _calls(stats) / measured
        lines.append(f"{side}: {per_request[side]:,.0f} calls per request, by package:")
        lines += _by_package(stats, measured, top)
        if detail:
            lines += _details(stats, measured, top * 3)
    return per_request["project"], per_request["baseline"], lines


def run(config: Config) -> list[Result]:
    with scratch_database(config.db_url, "wc") as db_url:
        project, baseline, lines = measure(db_url, warmup=200, measured=1000)
    print("\n".join(lines))
    return [
        Result(
            benchmark="write_calls",
            metric="Python function calls per request (cProfile)",
            unit="calls",
            project=project,
            baseline=baseline,
            target="(reported)",
            higher_is_better=False,
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.write_calls")
    parser.add_argument("--db", required=True, help="postgresql+asyncpg://user@127.0.0.1/db")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--top", type=int, default=12, help="packages to list")
    parser.add_argument("--detail", action="store_true", help="also the most called functions")
    args = parser.parse_args(argv)
    with scratch_database(args.db, "wc") as db_url:
        project, baseline, lines = measure(
            db_url, args.warmup, args.requests, args.top, args.detail
        )
    print("\n".join(lines))
    print(f"project / baseline: {project / baseline:.2f}x the calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
