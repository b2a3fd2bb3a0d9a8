"""Structured logs and the per-request middleware: request id, access log line, metrics.

What is logged about a request is fixed here: method, route template, status, duration and
request id. Never a body, a query string, a raw path or a header value other than the
request id, since any of them can carry a caller's name, number or provider. Exception
messages are never logged either (a database error can echo the values it was given):
only the exception's type and the stack's file, line and function names.
"""

import json
import logging
import re
import sys
import time
import traceback
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core import metrics
from app.core.settings import Settings

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
# A caller-supplied id is kept only if it is short and plain, so it cannot forge log lines.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

access_logger = logging.getLogger("handoff.access")

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_ATTRIBUTES = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
_HANDLER_MARK = "_handoff_handler"

# Libraries whose info or debug lines can carry request data (SQL parameters, URLs with their
# query, form fields, mail being sent): kept at WARNING whatever HANDOFF_LOG_LEVEL says.
_DATA_CARRYING_LOGGERS = (
    "aiosqlite",
    "sqlalchemy",
    "asyncpg",
    "httpx",
    "httpcore",
    "python_multipart",
    "multipart",
    "aiosmtplib",
    "uvicorn.asgi",
)
# Libraries that would write a line on every readiness probe.
_NOISY_LOGGERS = ("alembic",)


def _exception_fields(record: logging.LogRecord) -> dict[str, Any]:
    if not record.exc_info or record.exc_info[0] is None:
        return {}
    exc_type, _exc, tb = record.exc_info
    frames = traceback.extract_tb(tb)
    return {
        "exc_type": exc_type.__name__,
        "stack": [f"{f.filename}:{f.lineno} in {f.name}" for f in frames],
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id and `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker, when there are several
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in entry and not key.startswith("_"):
                entry[key] = value
        entry.update(_exception_fields(record))
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: the same fields, as `key=value` after the message."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        fields = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_")
        }
        request_id = fields.pop("request_id", None) or request_id_var.get()
        if request_id:
            fields["request_id"] = request_id
        fields.update(_exception_fields(record))
        tail = " ".join(f"{k}={v}" for k, v in fields.items())
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        return f"{line} {tail}" if tail else line


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send every logger (ours, uvicorn's, SQLAlchemy's) through one handler on the root.

    Idempotent: a second call replaces the handler the first one added and leaves any other
    handler (pytest's capture, say) alone.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's own handlers would print plain text; ours print the configured format.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Our middleware writes the access log; uvicorn's would print the full path and query.
    logging.getLogger("uvicorn.access").disabled = True
    for name in (*_DATA_CARRYING_LOGGERS, *_NOISY_LOGGERS):
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", ()):
        if key == _HEADER_KEY:
            candidate = value.decode("latin-1").strip()
            if _VALID_REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else metrics.UNMATCHED_ROUTE


# Each (method, route, status)'s two metric series, looked up once rather than on every request
# (`labels()` validates and locks each time). Bounded, as a client chooses the method.
_SERIES_MAX = 1_000
_series_cache: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    key = (method, route, status)
    found = _series_cache.get(key)
    if found is None:
        if len(_series_cache) >= _SERIES_MAX:
            _series_cache.clear()
        found = _series_cache[key] = (
            metrics.HTTP_REQUESTS.labels(method=method, route=route, status=str(status)),
            metrics.HTTP_REQUEST_DURATION.labels(method=method, route=route),
        )
    return found


class RequestContextMiddleware:
    """Gives each HTTP request an id (echoed as X-Request-ID), then counts and logs it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # if the app fails before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k != _HEADER_KEY]
                headers.append((_HEADER_KEY, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - started
            method = scope["method"]
            route = _route_template(scope)
            counter, histogram = _series(method, route, status)
            counter.inc()
            histogram.observe(duration)
            access_logger.info(
                "request",
                extra={
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 2),
                },
            )
            request_id_var.reset(token)


def install_request_context(app: FastAPI) -> None:
    """Wrap RequestContextMiddleware around the app's whole stack.

    `add_middleware` would put it inside Starlette's error middleware, so a 500 would leave
    without X-Request-ID and its log line without the request id.
    """
    build_stack = app.build_middleware_stack

    def build() -> ASGIApp:
        return RequestContextMiddleware(build_stack())

    app.build_middleware_stack = build  # type: ignore[method-assign]
