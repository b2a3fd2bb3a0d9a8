"""Adding the pages to the app: session secret, routers and static files."""

import logging
import secrets
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from app.core.settings import Settings
from app.web import advisers, auth, callbacks, complete_reports, feedback, report_records, reports
from app.web.pages import http_error_page, wants_page

logger = logging.getLogger("handoff.web")

STATIC = Path(__file__).with_name("static")


def install_web(app: FastAPI, settings: Settings) -> None:
    if settings.session_secret:
        app.state.session_secret = settings.session_secret
    else:
        # Fine for one process; with several workers each would refuse the others' cookies
        # (`handoff serve --workers` warns about that).
        logger.info("HANDOFF_SESSION_SECRET is not set: web sign-ins last as long as this process")
        app.state.session_secret = secrets.token_urlsafe(32)
    app.include_router(auth.router)
    app.include_router(reports.router)
    app.include_router(report_records.router)
    app.include_router(complete_reports.router)
    # After the advisers' router: /feedback/new is not a /feedback/{feedback_id}.
    app.include_router(advisers.router)
    app.include_router(callbacks.router)
    app.include_router(feedback.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _pages_for_browsers(app)


def _pages_for_browsers(app: FastAPI) -> None:
    """An address no route serves (404) or a method it does not take (405), asked for by a
    browser outside /v1, is a page in the site's layout; the API keeps its problem+json."""
    problem = app.exception_handlers[HTTPException]

    async def page_or_problem(request: Request, exc: Exception) -> Response:
        answer: Response = await problem(request, exc)  # type: ignore[misc]
        if isinstance(exc, HTTPException) and exc.status_code in (404, 405) and wants_page(request):
            page = http_error_page(request, exc)
            if "allow" in answer.headers:  # every method the address answers, as the API says
                page.headers["Allow"] = answer.headers["allow"]
            return page
        return answer

    app.add_exception_handler(HTTPException, page_or_problem)
