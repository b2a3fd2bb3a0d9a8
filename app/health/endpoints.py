import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app.core import metrics
from app.core.errors import RETRY_AFTER_SECONDS, problem
from app.core.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])
logger = logging.getLogger("handoff.metrics")


@router.get("/healthz", operation_id="healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    """The database answers and its schema is at the newest migration."""
    engine = request.app.state.engine
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        current = await current_revision(engine)
    except Exception:  # any database failure means "not ready", never a 500
        return problem(
            503,
            "database_unavailable",
            "Not ready",
            "The database does not answer.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    head = head_revision(request.app.state.settings.database_url)
    if current != head:
        return problem(
            503,
            "migrations_pending",
            "Not ready",
            f"The schema is at {current}, the code expects {head}: run 'handoff migrate'.",
        )
    return JSONResponse({"status": "ready", "revision": current})


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus text format. Block it at the load balancer: it is for the scraper."""
    extra = []
    try:
        async with request.app.state.sessionmaker() as session:
            extra = await metrics.scrape_families(session, request.app.state.clock.now())
    except Exception as exc:  # the process's own metrics are still worth serving
        logger.warning("outbox metrics unavailable", extra={"exc_type": type(exc).__name__})
    return Response(metrics.render(extra), media_type=metrics.CONTENT_TYPE)
