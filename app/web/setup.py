"""Adding the pages to the app: session secret, routers and static files."""

import logging
import secrets
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.core.settings import Settings
from app.web import advisers, auth, reports

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
    app.include_router(advisers.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
