"""IdempotentRoute: the route class of the API's routers. Its POST operations take an
optional Idempotency-Key header; with one, a retry gets the first answer again."""

import logging
import uuid
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.core.auth import bearer_secret, identify
from app.core.errors import Unprocessable
from app.idempotency import service

logger = logging.getLogger("handoff.idempotency")

REPLAYED_HEADER = "Idempotent-Replayed"


class _Claim:
    """The key this request holds, and whether its own transaction has committed."""

    def __init__(self, row_id: uuid.UUID) -> None:
        self.row_id = row_id
        self.committed = False


_current_claim: ContextVar[_Claim | None] = ContextVar("idempotency_claim", default=None)


@event.listens_for(Session, "before_commit")
def _fence(session: Session) -> None:
    # The request's own transaction marks its claim, and fails if a retry has taken it over.
    claim = _current_claim.get()
    if claim is not None and not claim.committed:
        service.mark_committed(session, claim.row_id)


@event.listens_for(Session, "after_commit")
def _note_commit(_session: Session) -> None:
    # Once the request's changes are committed its key must never be given back, even if
    # building the answer fails afterwards: a retry would create the record a second time.
    claim = _current_claim.get()
    if claim is not None:
        claim.committed = True


_HEADER_DESCRIPTION = (
    "Optional. Send the same key when retrying: the first answer comes back and nothing is "
    "created twice. 1-255 printable ASCII characters; kept at least 24 hours for the calling "
    "API key."
)


def _header_parameter() -> dict[str, Any]:
    """The header as the OpenAPI document declares it (what FastAPI would write for an
    optional `Header(pattern=...)`). Declared there only: IdempotentRoute reads the header
    itself, so a dependency would be solved on every POST for nothing."""
    return {
        "name": service.HEADER,
        "in": "header",
        "required": False,
        "description": _HEADER_DESCRIPTION,
        "schema": {
            "anyOf": [{"type": "string", "pattern": service.KEY_PATTERN}, {"type": "null"}],
            "description": _HEADER_DESCRIPTION,
            "title": service.HEADER,
        },
    }


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class IdempotentRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if "POST" in (kwargs.get("methods") or ()):
            extra = dict(kwargs.get("openapi_extra") or {})
            extra["parameters"] = [*extra.get("parameters", ()), _header_parameter()]
            kwargs["openapi_extra"] = extra
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if "POST" not in (self.methods or ()):
            return handler

        async def idempotent_handler(request: Request) -> Response:
            raw_key = request.headers.get(service.HEADER)
            if raw_key is None:
                return await handler(request)  # no key: nothing else to do here
            secret = bearer_secret(request)
            if secret is None:
                return await handler(request)  # no API key: a 401 from auth
            return await _run_once(request, handler, service.check_key(raw_key), secret)

        return idempotent_handler


async def _run_once(request: Request, handler: Handler, key: str, secret: str) -> Response:
    state = request.app.state
    request_hash = service.fingerprint(request.method, request.url.path, await request.body())
    sealer = service.Sealer(secret, key)
    async with state.sessionmaker() as session:
        principal = await identify(request, session)
        if principal is None:
            return await handler(request)  # unknown or revoked key: the usual 401
        outcome = await service.claim(
            session,
            api_key_id=principal.key_id,
            idempotency_key=key,
            request_hash=request_hash,
            now=state.clock.now(),
            ttl=timedelta(hours=state.settings.idempotency_ttl_hours),
        )
    if isinstance(outcome, service.StoredAnswer):
        return _replay(outcome, sealer, request_hash)

    claim = _Claim(outcome)
    token = _current_claim.set(claim)
    try:
        # The endpoint's session, closed (anything uncommitted rolled back) before the key is
        # given back: on SQLite an open write would lock the database against that.
        async with state.sessionmaker() as request.state.session:
            response = await handler(request)
    except BaseException:
        _current_claim.reset(token)  # before any session of our own commits
        await _give_back(request, claim)
        raise
    _current_claim.reset(token)
    body = getattr(response, "body", None)
    if 200 <= response.status_code < 300 and isinstance(body, bytes):
        await service.complete(
            state.sessionmaker,
            outcome,
            status=response.status_code,
            media_type=response.media_type,
            sealed_body=sealer.seal(body, request_hash),
        )
    else:
        await _give_back(request, claim)
    return response


async def _give_back(request: Request, claim: _Claim) -> None:
    if claim.committed:
        # Changes were saved but no answer was stored: the key stays "committed" until it
        # expires, so that a retry is refused (409) rather than run twice.
        logger.warning("idempotent request committed without a stored answer")
        return
    await service.release(request.app.state.sessionmaker, claim.row_id)


def _replay(answer: service.StoredAnswer, sealer: service.Sealer, request_hash: str) -> Response:
    body = sealer.open(answer.sealed_body, request_hash)
    if body is None:
        # Only another API key secret could get here, and keys are scoped: never expected.
        raise Unprocessable(
            "idempotency_key_reused", "This Idempotency-Key's answer cannot be read."
        )
    return Response(
        body,
        status_code=answer.status,
        media_type=answer.media_type,
        headers={REPLAYED_HEADER: "true"},
    )
