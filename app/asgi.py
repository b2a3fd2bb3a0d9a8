"""The ASGI entry point for uvicorn: `uvicorn app.asgi:app` (what `handoff serve` runs, with
the HTTP protocol of app/core/http_protocol.py that bounds request heads and read times).

Each worker process imports this module, so logging is configured here, per process, and the
heap is settled here once the app is built.
"""

import gc

from app.core.observability import configure_logging
from app.core.settings import get_settings
from app.main import create_app

# A collection of the youngest generation runs after this many more container objects are
# made than freed (Python's default is 700). A request makes and frees a few thousand, so at
# 700 the collector runs several times per request and scans the objects of every request
# in flight; at this size it runs only when objects really accumulate.
YOUNG_GENERATION_THRESHOLD = 10_000


def settle_heap() -> None:
    """Leave what start-up made (modules, routes, schemas, the database's metadata: most of
    the heap, and alive for the whole process) out of every later garbage collection, and
    collect the youngest generation less often. Both change only when the collector runs
    and what it scans, never what is freed: objects are still freed as soon as the last
    reference to them goes, and cycles made after start-up are still collected."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, middle, old)


configure_logging(get_settings())
app = create_app()
settle_heap()
