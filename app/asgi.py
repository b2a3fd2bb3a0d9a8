"""The ASGI entry point for uvicorn: `uvicorn app.asgi:app` (what `handoff serve` runs, with
the HTTP protocol of app/core/http_protocol.py that bounds request heads and read times).

Each worker process imports this module, so logging is configured here, per process.
"""

from app.core.observability import configure_logging
from app.core.settings import get_settings
from app.main import create_app

configure_logging(get_settings())
app = create_app()
