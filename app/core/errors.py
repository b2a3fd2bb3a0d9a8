"""Domain errors with stable codes, and the one place that turns errors into problem+json."""

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.database import DatabaseUnreachable, database_unavailable

logger = logging.getLogger("handoff.errors")

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """An error a client can act on. Subclasses fix `status` and `title`; `code` is stable."""

    status: int = 400
    title: str = "Bad request"

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        if status is not None:
            self.status = status
        self.headers = headers
        self.extra = extra or {}


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class Unprocessable(DomainError):
    status = 422
    title = "Unprocessable request"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"https://handoff.invalid/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


# How long a client should wait before trying again while the database does not answer.
RETRY_AFTER_SECONDS = 1


def database_unavailable_problem() -> JSONResponse:
    """503 `database_unavailable`, the one answer to a request the database could not serve."""
    return problem(
        503,
        "database_unavailable",
        "Service unavailable",
        "The database is not answering. Try again shortly; a write sent with an "
        "Idempotency-Key is safe to send again with the same key.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_errors(exc: RequestValidationError | ValidationError) -> list[dict[str, str]]:
    """Each failed field as `field` (dotted path), `code` and `message`: the API's `errors` and
    the pages' messages next to each field."""
    errors = []
    for err in exc.errors():
        errors.append(
            {
                "field": _field_path(tuple(err.get("loc", ()))),
                "code": str(err.get("type", "invalid")),
                "message": str(err.get("msg", "invalid value")),
            }
        )
    return errors


FASTAPI_BODY_ERROR = "There was an error parsing the body"


def invalid_json(document: Any, error: dict[str, Any] | None) -> JSONResponse:
    """400 `invalid_json`, saying where the body stops being JSON (line, column, character)."""
    detail = "The body is not valid JSON (UTF-8 text)."
    extra: dict[str, Any] = {}
    if error is not None:
        loc = tuple(error.get("loc", ()))
        position = loc[-1] if loc and isinstance(loc[-1], int) else None
        reason = str((error.get("ctx") or {}).get("error", "JSON decode error"))
        if position is not None and isinstance(document, str):
            line = document.count("\n", 0, position) + 1
            column = position - document.rfind("\n", 0, position)
            detail = (
                f"The body is not valid JSON: {reason[:1].lower()}{reason[1:]} at line {line}, "
                f"column {column} (character {position})."
            )
            extra = {"line": line, "column": column, "position": position}
    return problem(
        400,
        "invalid_json",
        "Invalid JSON",
        detail,
        errors=[{"field": "body", "code": "invalid_json", "message": detail}],
        **extra,
    )


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    path = request.scope["path"]
    for route in iter_route_contexts(request.app.router.routes):
        regex = getattr(route, "path_regex", None)
        if route.methods and regex is not None and regex.match(path):
            methods |= route.methods
    return sorted(methods)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return problem(
            exc.status, exc.code, exc.title, exc.detail, headers=exc.headers, **exc.extra
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        malformed = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if malformed is not None:
            return invalid_json(exc.body, malformed)
        errors = validation_errors(exc)
        # A single field error with a domain code (e.g. invalid_characters) is lifted to the top.
        codes = {e["code"] for e in errors}
        code = (
            codes.pop()
            if len(codes) == 1 and errors[0]["code"] in DOMAIN_FIELD_CODES
            else ("validation_error")
        )
        return problem(
            422,
            code,
            "Invalid request",
            "The request has invalid or missing fields.",
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == FASTAPI_BODY_ERROR:
            # FastAPI's answer to a body that is not text at all (e.g. not UTF-8).
            return invalid_json(None, None)
        codes = {
            404: "not_found",
            405: "method_not_allowed",
            413: "payload_too_large",
            415: "unsupported_media_type",
        }
        code = codes.get(exc.status_code, "http_error")
        headers = dict(getattr(exc, "headers", None) or {})
        detail = str(exc.detail)
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path; a path served by
            # several routes (GET and POST) allows them all.
            headers["Allow"] = ", ".join(_allowed_methods(request))
            detail = f"This address answers {headers['Allow']}, not {request.method}."
        return problem(exc.status_code, code, str(exc.detail), detail, headers=headers or None)

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> JSONResponse:
        # Two requests raced for the same record (e.g. two outcomes for one transfer).
        logger.warning("integrity conflict: %s", type(exc.orig).__name__)
        return problem(
            409,
            "concurrent_change",
            "Conflict",
            "Another request changed this record at the same moment; read it and try again.",
        )

    # Handled here rather than by the catch-all below: Starlette's last-resort handler re-raises
    # after answering, which makes uvicorn log a stack and close the keep-alive connection,
    # dropping requests already sent on it.
    @app.exception_handler(DBAPIError)
    @app.exception_handler(DatabaseUnreachable)
    @app.exception_handler(PoolTimeout)
    async def _database(_: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):
            logger.warning("database unavailable: %s", type(exc).__name__)
            return database_unavailable_problem()
        logger.error("unhandled database error: %s", type(exc).__name__)
        return problem(500, "internal_error", "Internal error", "Something went wrong on our side.")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Log the type only: messages of database errors can echo request values.
        logger.error("unhandled error: %s", type(exc).__name__)
        return problem(500, "internal_error", "Internal error", "Something went wrong on our side.")


# Field-level codes that are part of the public contract, raised by our own validators.
DOMAIN_FIELD_CODES = {
    "invalid_characters",
    "invalid_phone_number",
    "naive_datetime",
    "invalid_datetime",
    "invalid_reference",
    "invalid_month",
    "blank",
    "unknown_status",
    "unknown_outcome",
}
