"""Prometheus metrics: the counters and histograms the code updates, and the /metrics text.

Labels never carry personal data or raw paths: a route is its template
(`/v1/transfers/{transfer_id}`), an org is a body's code.

With several worker processes (`handoff serve --workers N`) each process counts on its own;
prometheus-client's multiprocess mode, switched on by the PROMETHEUS_MULTIPROC_DIR
environment variable (set before the processes start), sums them so that any worker
answers a scrape with the totals of all. `handoff serve` sets it for itself when it starts
more than one worker and the variable is unset.
"""

import os
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncSession

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED_ROUTE = "unmatched"  # requests no route answers: never their raw path

# The *_created series double what is scraped and say nothing an operator asks about.
disable_created_metrics()

HTTP_REQUESTS = Counter(
    "handoff_http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "handoff_http_request_duration_seconds",
    "Time from receiving a request to sending the end of its response.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CALLBACK_REQUESTS_CREATED = Counter(
    "handoff_callback_requests_created_total",
    "Call back requests created, by the body asking and the body asked.",
    ["from_org", "to_org"],
)
REPORT_GENERATION = Histogram(
    "handoff_report_generation_seconds",
    "Time taken to build a report, by report.",
    ["report"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

# Metric families computed at scrape time from the database, registered by the packages that
# own them (the outbox's queue, by app.wiring): each is given a session and the time.
ScrapeCollector = Callable[[AsyncSession, datetime], Awaitable[list[GaugeMetricFamily]]]
_SCRAPE_COLLECTORS: dict[str, ScrapeCollector] = {}


def register_scrape_collector(name: str, collect: ScrapeCollector) -> None:
    """Add a scrape-time collector (registering one again under its name replaces it)."""
    _SCRAPE_COLLECTORS[name] = collect


async def scrape_families(session: AsyncSession, now: datetime) -> list[GaugeMetricFamily]:
    """Every registered scrape-time collector's families, in the order they were registered."""
    families: list[GaugeMetricFamily] = []
    for collect in _SCRAPE_COLLECTORS.values():
        families += await collect(session, now)
    return families


def callback_request_created(from_org: str, to_org: str) -> None:
    CALLBACK_REQUESTS_CREATED.labels(from_org=from_org, to_org=to_org).inc()


@contextmanager
def time_report(report: str) -> Iterator[None]:
    """`with time_report("due_dates"): ...` observes how long the block took."""
    with REPORT_GENERATION.labels(report=report).time():
        yield


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class _Snapshot(Collector):
    """Metric families computed at scrape time (from the database), served once."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self._families = families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._families


class _ProcessRegistry(Collector):
    """This process's own metrics (single-process mode)."""

    def collect(self) -> Iterator[object]:  # type: ignore[override]
        yield from REGISTRY.collect()


def render(extra: list[GaugeMetricFamily]) -> bytes:
    """The Prometheus text: every process's metrics (or this one's), plus `extra`."""
    registry = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ProcessRegistry())
    registry.register(_Snapshot(extra))
    return generate_latest(registry)
