"""What every benchmark needs: a scratch database, a uvicorn server, the wrk driver, results.

Each benchmark module (`write_path` now; the report and the outbox drain later) exposes
`run(config) -> list[Result]`; `__main__` runs them and prints project vs baseline.
"""

import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
LUA_SCRIPT = Path(__file__).with_name("post.lua")


@dataclass(frozen=True)
class Config:
    db_url: str  # postgresql+asyncpg://... of a database on the server to benchmark against
    requests: int = 3000  # measured responses per run, split over wrk's threads
    warmup: int = 500  # responses sent before the measured runs, and not counted
    runs: int = 3  # repeats; the median is reported
    concurrency: int = 32  # open connections held by wrk
    workers: tuple[int, ...] = (1, 2)
    profile_dir: Path | None = None  # py-spy flame graphs of the project's server, if set
    report_sizes: tuple[int, ...] = (100_000, 1_000_000, 5_000_000)  # events seeded, in turn
    report_warmup: int = 3  # reports (and baseline statements) not counted, at each size
    report_repeats: int = 15  # timed reports at each size; the median is reported
    outbox_messages: int = 5000  # call back emails drained per run
    outbox_warmup: int = 200  # emails drained (and sent by the baseline) before the runs
    outbox_connections: int = 4  # HANDOFF_SMTP_CONNECTIONS for the drain, and the N-connection loop
    callback_sizes: tuple[int, ...] = (10_000, 1_000_000)  # call back requests seeded, in turn


@dataclass
class Result:
    """One figure for the project and the bare baseline; `ratio` is project / baseline."""

    benchmark: str
    metric: str
    unit: str
    project: float
    baseline: float
    target: str = ""
    higher_is_better: bool = True
    runs: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.project / self.baseline if self.baseline else float("nan")

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ratio": round(self.ratio, 3)}


def median(values: list[float]) -> float:
    return statistics.median(values)


# --- the database -------------------------------------------------------------------------


@contextmanager
def scratch_database(db_url: str, purpose: str) -> Iterator[str]:
    """A new, migrated database named after `db_url`'s, dropped afterwards whatever happens."""
    from app.core.migrate import upgrade

    base = make_url(db_url)
    if base.get_backend_name() != "postgresql":
        raise SystemExit("benchmarks run against PostgreSQL: pass --db postgresql+asyncpg://...")
    name = f"{base.database}_{purpose}_{uuid.uuid4().hex[:6]}"
    _admin(db_url, f'CREATE DATABASE "{name}"')
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        _admin(db_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_key(db_url: str, role: str, org: str = "cqc") -> tuple[uuid.UUID, str]:
    """A new API key of `org` with `role` in the database: its id and its secret."""
    from app.audit.service import CLI
    from app.core.auth import Role
    from app.core.clock import Clock
    from app.core.database import make_engine, make_sessionmaker
    from app.keys import service as keys
    from app.protocol.routes import load_table

    async def go() -> tuple[uuid.UUID, str]:
        engine = make_engine(db_url)
        try:
            async with make_sessionmaker(engine)() as session:
                key, secret = await keys.create_key(
                    session,
                    load_table(),
                    org=org,
                    role=Role(role),
                    name="bench",
                    now=Clock().now(),
                    actor=CLI,
                )
                await session.commit()
                return key.id, secret
        finally:
            await engine.dispose()

    return asyncio.run(go())


def asyncpg_dsn(db_url: str) -> str:
    return db_url.replace("postgresql+asyncpg://", "postgresql://")


def _admin(db_url: str, statement: str) -> None:
    # Through the server's maintenance database, `postgres`: the one named in --db only names
    # the scratch databases and need not exist. CREATE/DROP DATABASE cannot run inside a
    # transaction block.
    maintenance = make_url(db_url).set(database="postgres").render_as_string(hide_password=False)
    run_sql(maintenance, statement, autocommit=True)


def run_sql(db_url: str, *statements: str, autocommit: bool = False) -> None:
    from app.core.database import make_engine

    async def go() -> None:
        options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
        engine = make_engine(db_url, **options)
        try:
            async with engine.begin() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    asyncio.run(go())


# --- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def uvicorn_command(app: str, port: int, workers: int) -> list[str]:
    """The same settings for the project and the baseline: `handoff serve` less the access log."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--proxy-headers",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


class Server:
    """A uvicorn process tree on loopback, its peak memory, and (optionally) py-spy on it."""

    def __init__(self, app: str, workers: int, env: dict[str, str]):
        self.port = free_port()
        self.workers = workers
        # The server's log (the project logs each request) goes to a file: a pipe nobody reads
        # fills up after a few hundred requests and then blocks the server.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self.process = subprocess.Popen(
            uvicorn_command(app, self.port, workers),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(f"server exited: {self.log.read().decode()[-4000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                time.sleep(0.1)
                continue
            # With several workers the socket answers before every worker is up.
            if len(self.worker_pids()) >= self.workers:
                return
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def pids(self) -> list[int]:
        """The uvicorn process and all its descendants (workers, multiprocessing helpers)."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        found, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def worker_pids(self) -> list[int]:
        if self.workers == 1:
            return [self.process.pid]
        return [p for p in self.pids() if p != self.process.pid and _is_python(p)]

    def peak_rss_mib(self) -> float:
        """Sum over the process tree of each process's peak resident set (VmHWM)."""
        total_kib = 0
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
            total_kib += int(match.group(1)) if match else 0
        return total_kib / 1024

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the process tree (a noise-resistant figure)."""
        ticks = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def _is_python(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    # uvicorn's workers are multiprocessing spawn children; skip its resource tracker.
    return b"python" in cmdline and b"resource_tracker" not in cmdline


@contextmanager
def serving(app: str, workers: int, env: dict[str, str]) -> Iterator[Server]:
    server = Server(app, workers, env)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def py_spy(pid: int, output: Path) -> Iterator[None]:
    """Sample one process with py-spy while the block runs (collapsed stacks, flamegraph input)."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    output.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--output",
            str(output),
            "--format",
            "raw",
            "--rate",
            "250",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let py-spy attach before the load starts
    try:
        yield
    finally:
        process.send_signal(2)  # SIGINT: py-spy writes the file and exits
        process.wait(timeout=60)


# --- the load generator -------------------------------------------------------------------


def ensure_wrk() -> str:
    """Debian's wrk; installed with apt-get when absent (the bench runs as root in CI)."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is not installed: run `apt-get install wrk` (Debian) first")
    print("installing wrk with apt-get ...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


@dataclass(frozen=True)
class Load:
    responses: int
    failures: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.responses / self.seconds if self.seconds else 0.0


def post_load(
    url: str, body_file: Path, *, requests: int, concurrency: int, auth: str = ""
) -> Load:
    """POST `body_file` to `url` with `concurrency` connections until `requests` responses."""
    threads = 2 if concurrency >= 2 else 1
    per_thread = max(1, requests // threads)
    completed = subprocess.run(
        [
            ensure_wrk(),
            f"--threads={threads}",
            f"--connections={concurrency}",
            f"--duration={max(30, requests // 20)}s",  # an upper bound: the quota ends the run
            "--timeout=10s",
            f"--script={LUA_SCRIPT}",
            url,
        ],
        env={
            **os.environ,
            "BENCH_BODY_FILE": str(body_file),
            "BENCH_AUTH": auth,
            "BENCH_PER_THREAD": str(per_thread),
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=max(30, requests // 20) + 30,
    )
    line = next((x for x in completed.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{completed.stdout}\n{completed.stderr}")
    load = Load(**json.loads(line.removeprefix("BENCH_RESULT ")))
    if load.failures:
        raise RuntimeError(f"{load.failures} of {load.responses} responses were not 201 at {url}")
    return load
