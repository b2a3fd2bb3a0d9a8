from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.core.errors import problem
from app.core.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


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
        return problem(503, "database_unavailable", "Not ready", "The database does not answer.")
    head = head_revision(request.app.state.settings.database_url)
    if current != head:
        return problem(
            503,
            "migrations_pending",
            "Not ready",
            f"The schema is at {current}, the code expects {head}: run 'handoff migrate'.",
        )
    return JSONResponse({"status": "ready", "revision": current})
