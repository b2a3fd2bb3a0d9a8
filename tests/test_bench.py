"""The benchmark command runs end to end with tiny counts and prints project, baseline, ratio.

It measures nothing here (no wall-clock thresholds in tests): it only checks that the
command a reader of bench/RESULTS.md would run still works. Needs PostgreSQL and wrk.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PG_URL = os.environ.get("TEST_DATABASE_URL")
ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(not PG_URL, reason="benchmarks run against PostgreSQL"),
    pytest.mark.skipif(
        not shutil.which("wrk") and os.geteuid() != 0,
        reason="wrk is absent and cannot be installed without root",
    ),
]


async def _databases() -> set[str]:
    from sqlalchemy import text

    from app.core.database import make_engine

    assert PG_URL
    engine = make_engine(PG_URL)
    async with engine.connect() as connection:
        names = (await connection.execute(text("SELECT datname FROM pg_database"))).scalars()
        found = set(names)
    await engine.dispose()
    return found


def _bench(tmp_path: Path, *args: str) -> tuple[list[str], dict]:  # type: ignore[type-arg]
    """Run `python -m bench ARGS --json ...`; its printed figures and its JSON. Its scratch
    databases must be gone afterwards."""
    assert PG_URL
    out = tmp_path / "bench.json"
    before = asyncio.run(_databases())
    run = subprocess.run(
        [sys.executable, "-m", "bench", *args, "--db", PG_URL, "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert asyncio.run(_databases()) <= before  # its scratch database is gone
    return run.stdout.splitlines(), json.loads(out.read_text())


def _assert_ratio(result: dict) -> None:  # type: ignore[type-arg]
    assert result["project"] > 0 and result["baseline"] > 0
    assert result["ratio"] == pytest.approx(result["project"] / result["baseline"], abs=0.001)


def test_write_path_benchmark_prints_figures_and_ratios(tmp_path: Path) -> None:
    printed, report = _bench(
        tmp_path,
        "write-path",
        "--requests",
        "40",
        "--warmup",
        "10",
        "--runs",
        "1",
        "--concurrency",
        "4",
        "--workers",
        "1",
    )
    lines = [line for line in printed if line.startswith("write_path")]
    assert len(lines) == 3  # requests/s, CPU per request, peak RSS
    assert all("project" in line and "baseline" in line and "ratio" in line for line in lines)
    throughput = report["results"][0]
    assert throughput["metric"] == "requests/s, 1 worker"
    _assert_ratio(throughput)
    assert report["machine"]["cores"]


def test_report_benchmark_seeds_each_size_and_times_the_report_against_the_sql(
    tmp_path: Path,
) -> None:
    printed, report = _bench(
        tmp_path,
        "report",
        "--report-sizes",
        "480,2400",
        "--report-warmup",
        "1",
        "--report-repeats",
        "2",
    )
    seeded = [line for line in printed if line.startswith("report: seeded")]
    assert [line.split()[2] for line in seeded] == ["480", "1920"]  # grown to each size in turn
    timings, memory = report["results"][:2], report["results"][2]
    # (the bench checks the report's total against the SQL's on every repeat)
    assert [t["metric"].split(",")[1] for t in timings] == [" 480 ev", " 2.4k ev"]
    for result in timings:
        _assert_ratio(result)
        assert len(result["runs"]["project"]) == len(result["runs"]["baseline"]) == 2
    assert memory["benchmark"] == "report_memory"
    assert memory["runs"].keys() == {"480", "2.4k"}
    _assert_ratio(memory)


def test_outbox_drain_benchmark_sends_every_message_on_both_sides(tmp_path: Path) -> None:
    printed, report = _bench(
        tmp_path, "outbox-drain", "--outbox-messages", "30", "--outbox-warmup", "5", "--runs", "1"
    )
    one, same = report["results"]  # the drain over 4 connections against 1, then against 4
    assert one["metric"] == "emails/s, 30 callbacks, 4 conn vs 1 bare conn"
    assert same["metric"] == "emails/s, 30 callbacks, 4 conn vs 4 bare conn"
    assert one["runs"]["project"] == same["runs"]["project"]
    assert len([line for line in printed if line.startswith("outbox_drain")]) == 2
    _assert_ratio(one)
    _assert_ratio(same)


def test_callbacks_benchmark_times_the_list_and_the_writes_against_the_sql(
    tmp_path: Path,
) -> None:
    printed, report = _bench(
        tmp_path,
        "callbacks",
        "--callback-sizes",
        "200,1000",
        "--report-warmup",
        "1",
        "--report-repeats",
        "2",
    )
    seeded = [line for line in printed if line.startswith("callbacks: seeded")]
    assert [line.split()[2] for line in seeded] == ["200", "800"]  # grown to each size in turn
    names = [r["benchmark"] for r in report["results"]]
    assert names == ["callbacks_list", "callbacks_write"] * 2 + ["callbacks_list_growth"]
    # (the bench checks the project's first page against the SQL's on every repeat)
    for result in report["results"][:4]:
        _assert_ratio(result)
        assert len(result["runs"]["project"]) == len(result["runs"]["baseline"]) == 2
    assert report["results"][-1]["runs"].keys() == {"200", "1k"}
    assert any("Index Scan" in line or "Index Only Scan" in line for line in printed)
