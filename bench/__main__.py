"""`python -m bench all|write-path|report|outbox-drain|callbacks --db postgresql+asyncpg://...
[--json f]`.

`all` runs the write path (1, and its memory, 4), the report at scale (2, and 4), the
outbox drain (3) and the call back list and lifecycle at scale (5), and prints for each
figure the project, the baseline and their ratio.
"""

import argparse
import json
import platform
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import callbacks, outbox_drain, report, write_calls, write_path
from bench.common import Config, Result

# Each benchmark is a module with run(config) -> list[Result], run in this order by `all`.
BENCHMARKS: dict[str, Callable[[Config], list[Result]]] = {
    "write-path": write_path.run,
    "report": report.run,
    "outbox-drain": outbox_drain.run,
    "callbacks": callbacks.run,
    "write-calls": write_calls.run,
}


def machine() -> dict[str, str]:
    def out(*command: str) -> str:
        try:
            return subprocess.run(command, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"

    memory = out("free", "-h").splitlines()
    return {
        "cores": out("nproc"),
        "memory": memory[1].split()[1] if len(memory) > 1 else "?",
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def print_result(result: Result) -> None:
    better = "" if result.higher_is_better else " (lower is better)"
    target = f"  target {result.target}" if result.target else ""
    print(
        f"{result.benchmark:<18} {result.metric:<26} project {result.project:>9.1f} "
        f"{result.unit:<5} baseline {result.baseline:>9.1f} {result.unit:<5} "
        f"ratio {result.ratio:.2f}x{better}{target}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("benchmark", choices=["all", *BENCHMARKS])
    parser.add_argument("--db", required=True, help="postgresql+asyncpg://user@127.0.0.1/db")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--requests", type=int, default=Config.requests, help="per run")
    parser.add_argument("--warmup", type=int, default=Config.warmup)
    parser.add_argument("--runs", type=int, default=Config.runs, help="median of this many")
    parser.add_argument("--concurrency", type=int, default=Config.concurrency)
    parser.add_argument("--workers", default="1,2", help="uvicorn worker counts, comma-separated")
    parser.add_argument("--profile-dir", type=Path, help="write py-spy flame graphs here")
    parser.add_argument(
        "--report-sizes",
        default=",".join(str(n) for n in Config.report_sizes),
        help="events seeded for the report benchmark, comma-separated",
    )
    parser.add_argument("--report-warmup", type=int, default=Config.report_warmup)
    parser.add_argument("--report-repeats", type=int, default=Config.report_repeats)
    parser.add_argument("--outbox-messages", type=int, default=Config.outbox_messages)
    parser.add_argument("--outbox-warmup", type=int, default=Config.outbox_warmup)
    parser.add_argument(
        "--outbox-connections",
        type=int,
        default=Config.outbox_connections,
        help="SMTP connections of the drain and of the second bare loop",
    )
    parser.add_argument(
        "--callback-sizes",
        default=",".join(str(n) for n in Config.callback_sizes),
        help="call back requests seeded for the call back benchmark, comma-separated "
        "(timed with --report-warmup and --report-repeats)",
    )
    args = parser.parse_args(argv)

    config = Config(
        db_url=args.db,
        requests=args.requests,
        warmup=args.warmup,
        runs=args.runs,
        concurrency=args.concurrency,
        workers=tuple(int(w) for w in args.workers.split(",")),
        profile_dir=args.profile_dir,
        report_sizes=tuple(int(n) for n in args.report_sizes.split(",")),
        report_warmup=args.report_warmup,
        report_repeats=args.report_repeats,
        outbox_messages=args.outbox_messages,
        outbox_warmup=args.outbox_warmup,
        outbox_connections=args.outbox_connections,
        callback_sizes=tuple(int(n) for n in args.callback_sizes.split(",")),
    )
    names = list(BENCHMARKS) if args.benchmark == "all" else [args.benchmark]
    started = datetime.now(UTC)
    results: list[Result] = []
    for name in names:
        for result in BENCHMARKS[name](config):
            print_result(result)
            results.append(result)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "started_at": started.isoformat(),
                    "command": " ".join(["python -m bench", *(argv or sys.argv[1:])]),
                    "machine": machine(),
                    "config": {k: str(v) for k, v in vars(config).items() if k != "db_url"},
                    "results": [r.as_dict() for r in results],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
