"""The OpenAPI document, with the problem+json answers each operation can give.

The error responses are derived here, in one place, from what a route depends on (an API
key, a role, path parameters, a body, an Idempotency-Key), so the document stays honest as
endpoints are added; schemathesis checks every answer against it (tests/test_schemathesis.py).
"""

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.core.auth import current_principal
from app.core.database import get_session
from app.core.errors import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details. `code` is stable; match on it, not on text.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "examples": ["validation_error"]},
        "line": {"type": "integer", "description": "For `invalid_json`: the line (from 1)."},
        "column": {"type": "integer", "description": "For `invalid_json`: the column (from 1)."},
        "position": {
            "type": "integer",
            "description": "For `invalid_json`: the character offset (from 0).",
        },
        "etag": {
            "type": "string",
            "description": "For `precondition_failed`: the record's current ETag.",
        },
        "acknowledged_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "For `callback_already_acknowledged`: when.",
        },
        "acknowledged_by": {
            "type": ["object", "null"],
            "description": "For `callback_already_acknowledged`: the key's name and body.",
            "properties": {"key_name": {"type": "string"}, "org": {"type": "string"}},
        },
        "outcome": {
            "type": ["string", "null"],
            "description": "For `callback_closed`: how the call back request ended.",
        },
        "closed_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "description": "For `callback_closed`: when.",
        },
        "errors": {
            "type": "array",
            "description": "For invalid fields: one entry each.",
            "items": {
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}

# What each status means in this API; an operation lists the ones it can answer.
DESCRIPTIONS = {
    400: "`invalid_json`: the body is not JSON (`detail`, `line`, `column` and `position` "
    "say where it stops being JSON), or `invalid_idempotency_key`: the Idempotency-Key is "
    "not 1-255 printable ASCII.",
    401: "`unauthenticated` (no API key) or `invalid_api_key` (unknown or revoked).",
    403: "`insufficient_role`: the key's role is too low for this; on a call back request, "
    "`callback_receiving_body_only` or `callback_sending_body_only`: the other body's part "
    "of its life.",
    404: "`not_found`: no such record for the calling body (another body's records are "
    "not found either).",
    409: "A conflict: the record's state does not allow this, another request changed it at "
    "the same moment (`concurrent_change`), or a request with this Idempotency-Key is "
    "still running (`idempotency_request_in_progress`).",
    412: "`precondition_failed`: `If-Match` names an older version of the record; read it "
    "again (`etag` gives the current one).",
    413: "`payload_too_large`: the body is over the size limit.",
    415: "`unsupported_media_type`: a body was sent without `Content-Type: application/json`.",
    422: "Invalid input: `validation_error` with `errors`, a field code such as "
    "`invalid_phone_number`, a rule such as `no_route`, `idempotency_key_reused`, or "
    "`idempotency_answer_not_kept` (saved before, but its answer was not kept: do not resend).",
    429: "`rate_limited`: too many requests for this API key; see `Retry-After`.",
    503: "`database_unavailable`: the database is not answering for now; try again after "
    "`Retry-After` seconds (a write with an Idempotency-Key is safe to send again with the "
    "same key). On `/readyz` also `migrations_pending`.",
}
# Answers that say when to come back.
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def error_statuses(route: Any) -> set[int]:
    """The 4xx and 5xx answers `route` can give, from what it depends on."""
    dependant = route.dependant
    calls = set(_calls(dependant))
    statuses: set[int] = set()
    if current_principal in calls:
        statuses |= {401, 429}
    if any(getattr(call, "required_role", None) for call in calls):
        statuses.add(403)
    if dependant.path_params:
        statuses.add(404)
    if dependant.path_params or dependant.query_params or dependant.header_params:
        statuses.add(422)
    if dependant.body_params:
        statuses |= {400, 413, 415, 422}
    if "POST" in (route.methods or ()):
        # Writes can meet a concurrent change; every API POST takes an Idempotency-Key, and
        # a body that is not JSON is refused (app/core/media_type.py).
        statuses |= {400, 409, 415, 422}
    if get_session in calls or "POST" in (route.methods or ()):
        statuses.add(503)  # the database may not answer
    statuses |= {int(code) for code in route.responses if 400 <= int(code) < 600}
    return statuses


def _problem_response(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    description = DESCRIPTIONS.get(status) or (existing or {}).get("description", "A problem.")
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
    }
    if status == 503:
        response["headers"] = _RETRY_AFTER
    return response


def with_problems(document: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    """Declare each operation's problem+json answers (FastAPI's own 422 schema is not ours)."""
    # Included routers are resolved lazily; FastAPI's own walk gives each route as served.
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute) or not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = document["paths"][route.path_format].get(method.lower())
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in sorted(error_statuses(route)):
                responses[str(status)] = _problem_response(status, responses.get(str(status)))
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    return document


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        return with_problems(generate(), app.routes)

    app.openapi = openapi  # type: ignore[method-assign]
