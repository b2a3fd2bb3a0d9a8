"""Fixtures: a migrated database per test (SQLite always; PostgreSQL when TEST_DATABASE_URL is
set), an app on a fixed clock, and API keys for advisers and team leaders of both bodies."""

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import text

from app.audit.service import CLI
from app.core.auth import Role
from app.core.clock import FixedClock
from app.core.database import make_engine, make_sessionmaker
from app.core.migrate import upgrade
from app.core.settings import Settings
from app.keys import service as keys
from app.main import create_app
from app.models import Base
from app.protocol.routes import RouteTable, load_table

try:
    from playwright.async_api import expect as _browser_expect
except ImportError:  # pragma: no cover - playwright is a test dependency
    _browser_expect = None
if _browser_expect is not None:
    # How long a browser test's assertion waits for the page to get there (Playwright's default
    # is 5 s). CI runs both legs side by side on two cores, and a page that reloads itself at
    # the wait's deadline was seen to take longer than 5 s there. A wait, not a time asserted:
    # a passing assertion returns as soon as the page is right.
    _browser_expect.set_options(timeout=20_000)

PG_URL = os.environ.get("TEST_DATABASE_URL")
START = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """On the PostgreSQL leg, skip what the SQLite leg has already proved."""
    if not PG_URL:
        return
    skip = pytest.mark.skip(reason="database independent: runs on the SQLite leg")
    for item in items:
        if item.get_closest_marker("database_independent"):
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `both_paths` runs twice: with the app's hot path (core.hot_path) and
    with every request through FastAPI's own handler, expecting the same either way."""
    if "hot_path" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_paths"):
        metafunc.parametrize(
            "hot_path", [True, False], ids=["hot path", "full path"], indirect=True
        )


@pytest.fixture
def hot_path(request: pytest.FixtureRequest) -> bool:
    """Settings.hot_path for the test's app: on, unless the test runs both ways."""
    return bool(getattr(request, "param", True))


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Run the migrations once: a SQLite file to copy, or the PostgreSQL test database."""
    if PG_URL:
        upgrade(PG_URL)
        return PG_URL
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(sqlite_url(path))
    return str(path)


async def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {names} CASCADE"))
    await engine.dispose()


@pytest.fixture
async def database_url(_migrated_template: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty, migrated database for this test alone."""
    if PG_URL:
        await _truncate_all(PG_URL)
        yield PG_URL
        return
    path = tmp_path / "handoff.db"
    shutil.copyfile(_migrated_template, path)
    yield sqlite_url(path)


@pytest.fixture
def is_postgres() -> bool:
    return bool(PG_URL)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def settings(database_url: str, tmp_path: Path, hot_path: bool) -> Settings:
    return Settings(
        database_url=database_url,
        email_dir=tmp_path / "outbox",
        outbox_worker_enabled=False,
        hot_path=hot_path,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def routes() -> RouteTable:
    return load_table()


@pytest.fixture
async def app(settings: Settings, clock: FixedClock, routes: RouteTable):  # type: ignore[no-untyped-def]
    application = create_app(settings, clock=clock, routes=routes)
    yield application
    await application.state.engine.dispose()


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://handoff.test") as c:
        yield c


@dataclass
class Key:
    id: uuid.UUID
    org: str
    role: Role
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret}"}


class Keys:
    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app

    async def make(self, org: str, role: Role | str, name: str = "test") -> Key:
        async with make_sessionmaker(self.app.state.engine)() as session:
            key, secret = await keys.create_key(
                session,
                self.app.state.routes,
                org=org,
                role=Role(role),
                name=name,
                now=self.app.state.clock.now(),
                actor=CLI,
            )
            await session.commit()
            return Key(key.id, org, Role(role), secret)


@pytest.fixture
def key_factory(app) -> Keys:  # type: ignore[no-untyped-def]
    return Keys(app)


@pytest.fixture
async def cqc_agent(key_factory: Keys) -> Key:
    return await key_factory.make("cqc", Role.agent, "cqc desk 1")


@pytest.fixture
async def lgsco_agent(key_factory: Keys) -> Key:
    return await key_factory.make("lgsco", Role.agent, "lgsco desk 1")


@pytest.fixture
async def cqc_leader(key_factory: Keys) -> Key:
    return await key_factory.make("cqc", Role.team_leader, "cqc concerns team manager")


@pytest.fixture
async def lgsco_leader(key_factory: Keys) -> Key:
    return await key_factory.make("lgsco", Role.team_leader, "lgsco intake team leader")


@pytest.fixture
def artifacts_dir() -> Iterator[Path]:
    path = Path(os.environ.get("HANDOFF_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    yield path


# Browser tests: Debian's chromium, driven by Playwright, against the app served by uvicorn.
# HANDOFF_TEST_CHROMIUM points them at another build (a missing one shows how skips read).
CHROMIUM = os.environ.get("HANDOFF_TEST_CHROMIUM", "/usr/bin/chromium")
BROWSER_MISSING = f"{CHROMIUM} is not installed (apt-get install chromium)"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> str:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(BROWSER_MISSING)
    return CHROMIUM


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Iterator[None]:
    """After the skip list, one line when the browser tests could not run at all."""
    result = yield
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if BROWSER_MISSING in str(report.longrepr)
    ]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} browser tests skipped: {BROWSER_MISSING}", yellow=True, bold=True
        )
    return result


@pytest.fixture
def chromium() -> str:
    return require_chromium()


@pytest.fixture
def live_server(settings: Settings, clock: FixedClock, routes: RouteTable) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread, on the test's clock."""
    app = create_app(settings, clock=clock, routes=routes)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)
