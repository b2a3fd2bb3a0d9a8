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


def test_write_path_benchmark_prints_figures_and_ratios(tmp_path: Path) -> None:
    assert PG_URL
    out = tmp_path / "bench.json"
    before = asyncio.run(_databases())
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "write-path",
            "--db",
            PG_URL,
            "--json",
            str(out),
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
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stdout.splitlines() if line.startswith("write_path")]
    assert len(lines) == 3  # requests/s, CPU per request, peak RSS
    assert all("project" in line and "baseline" in line and "ratio" in line for line in lines)

    report = json.loads(out.read_text())
    throughput = report["results"][0]
    assert throughput["metric"] == "requests/s, 1 worker"
    assert throughput["project"] > 0 and throughput["baseline"] > 0
    assert throughput["ratio"] == pytest.approx(
        throughput["project"] / throughput["baseline"], abs=0.001
    )
    assert report["machine"]["cores"]
    assert asyncio.run(_databases()) <= before  # its scratch database is gone
