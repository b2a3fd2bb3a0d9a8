"""create_app(): the application, its routers, error handlers and shared state."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app.audit.endpoints import router as audit_router
from app.callbacks.endpoints import router as callbacks_router
from app.core.body_limit import BodySizeLimitMiddleware
from app.core.clock import Clock
from app.core.database import make_engine, make_sessionmaker
from app.core.errors import install_error_handlers
from app.core.media_type import JsonBodyMiddleware
from app.core.observability import install_request_context
from app.core.openapi import install_openapi
from app.core.ratelimit import RateLimiter
from app.core.settings import Settings, get_settings
from app.feedback.endpoints import router as feedback_router
from app.health.endpoints import router as health_router
from app.keys.endpoints import router as keys_router
from app.protocol.endpoints import router as protocol_router
from app.protocol.routes import RouteTable, load_table
from app.reports.endpoints import router as reports_router
from app.signposts.endpoints import router as signposts_router
from app.transfers.endpoints import router as transfers_router
from app.web.setup import install_web
from app.wiring import outbox_worker, wire

DESCRIPTION = """
Records warm transfers, call back requests, signposts and misdirection feedback between
two public bodies (the CQC / LGSCO Information Sharing Agreement, Appendix 2), and enforces
the protocol's wait thresholds and permission-to-share rules.

Every `/v1` call needs an API key: `Authorization: Bearer <key>`. Errors are
`application/problem+json` with a stable `code`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    routes: RouteTable | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    wire(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        worker_task = None
        if settings.outbox_worker_enabled:
            # Its own sessions from the app's engine; requests only ever write outbox rows.
            worker = outbox_worker(
                app.state.sessionmaker, settings, app.state.routes, app.state.clock
            )
            worker_task = asyncio.create_task(worker.run(stop), name="outbox-worker")
        yield
        if worker_task is not None:
            stop.set()
            # A send cut short stays claimed until its lease expires, then goes again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker_task, settings.smtp_timeout_seconds + 5)
        await app.state.engine.dispose()

    # /docs and /redoc load Swagger UI and ReDoc from files shipped in fastapi-offline's wheel
    # (served under /static-offline-docs), not from a CDN, so they work without internet.
    app = FastAPIOffline(
        title="handoff",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.clock = clock or Clock()
    app.state.routes = routes or load_table(settings.routes_file)
    app.state.engine = make_engine(settings.database_url)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)
    app.state.rate_limiter = RateLimiter(settings)

    install_error_handlers(app)
    for router in (
        health_router,
        protocol_router,
        transfers_router,
        callbacks_router,
        signposts_router,
        feedback_router,
        keys_router,
        reports_router,
        audit_router,
    ):
        app.include_router(router)
    install_web(app, settings)
    install_openapi(app)
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)

    # Operations: request id, access log and metrics around everything, error pages included.
    install_request_context(app)
    return app
