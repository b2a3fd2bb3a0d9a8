"""IdempotentAPIRoute: the FastAPI route class of the API's routers. Its POST operations take an
optional Idempotency-Key header; with one, a retry gets the first answer again."""

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import Request, Response

from app.core.api_route import Handler, SessionAPIRoute
from app.core.auth import bearer_secret, identify
from app.core.database import (
    RequestSession,
    connection_lost,
    database_unavailable,
    reconnecting,
    tracking_commits,
)
from app.core.errors import Unprocessable
from app.idempotency import service

logger = logging.getLogger("handoff.idempotency")

REPLAYED_HEADER = "Idempotent-Replayed"


_HEADER_DESCRIPTION = (
    "Optional. Send the same key when retrying: the first answer comes back and nothing is "
    "created twice. 1-255 printable ASCII characters; kept at least 24 hours for the calling "
    "API key."
)


def _header_parameter() -> dict[str, Any]:
    """The header as the OpenAPI document declares it (what FastAPI would write for an
    optional `Header(pattern=...)`). Declared there only: IdempotentAPIRoute reads the header
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


class IdempotentAPIRoute(SessionAPIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if "POST" in (kwargs.get("methods") or ()):
            extra = dict(kwargs.get("openapi_extra") or {})
            extra["parameters"] = [*extra.get("parameters", ()), _header_parameter()]
            kwargs["openapi_extra"] = extra
        super().__init__(path, endpoint, **kwargs)
        self._is_post = "POST" in (self.methods or ())

    async def run(self, request: Request, handler: Handler) -> Response:
        raw_key = request.headers.get(service.HEADER) if self._is_post else None
        secret = bearer_secret(request) if raw_key is not None else None
        if raw_key is None or secret is None:
            # No key (or no API key: a 401 from auth): the endpoint's own transaction.
            return await super().run(request, handler)
        return await _run_once(request, handler, service.check_key(raw_key), secret)


async def _run_once(request: Request, handler: Handler, key: str, secret: str) -> Response:
    state = request.app.state
    request_hash = service.fingerprint(request.method, request.url.path, await request.body())
    sealer = service.Sealer(secret, key)

    async def claim() -> uuid.UUID | service.StoredAnswer | None:
        async with state.sessionmaker() as session:
            principal = await identify(request, session)
            if principal is None:
                return None
            return await service.claim(
                session,
                api_key_id=principal.key_id,
                idempotency_key=key,
                request_hash=request_hash,
                now=state.clock.now(),
                ttl=timedelta(hours=state.settings.idempotency_ttl_hours),
            )

    outcome = await reconnecting(claim)
    if outcome is None:
        return await handler(request)  # unknown or revoked key: the usual 401
    if isinstance(outcome, service.StoredAnswer):
        return _replay(outcome, sealer, request_hash)
    try:
        response = await _run_claimed(request, handler, outcome, sealer, request_hash)
    except BaseException:
        await _give_back(request, outcome)
        raise
    if not 200 <= response.status_code < 300:
        await _give_back(request, outcome)  # nothing was saved
    return response


async def _run_claimed(
    request: Request,
    handler: Handler,
    row_id: uuid.UUID,
    sealer: service.Sealer,
    request_hash: str,
) -> Response:
    """The endpoint and its stored answer in one transaction: the claim's row becomes
    `completed`, with the sealed answer, in the same COMMIT as the request's records, so a
    request that is saved always has its answer for a retry.

    If the connection dies before that COMMIT, nothing was saved: the transaction runs once
    more on a fresh connection. If it dies during the COMMIT, the claim's row says whether it
    was saved, and the answer is given as if nothing had happened.
    """
    built: list[Response] = []

    async def attempt() -> Response:
        built.clear()
        async with request.app.state.sessionmaker() as session:
            assert isinstance(session, RequestSession)
            session.commit_held = True
            request.state.session = session
            response = await handler(request)
            built.append(response)
            if not 200 <= response.status_code < 300:
                return response  # closing the session rolls back whatever it did
            body = getattr(response, "body", None)
            # The request's records and its answer, or neither.
            await service.complete(
                session,
                row_id,
                status=response.status_code,
                media_type=response.media_type,
                sealed_body=sealer.seal(body, request_hash) if isinstance(body, bytes) else None,
            )
            await session.commit_now()
            return response

    for last in (False, True):
        with tracking_commits() as run:
            try:
                return await attempt()
            except Exception as error:
                if last or not connection_lost(error):
                    raise
                if run.committing:
                    saved = await _saved(request, row_id)
                    if saved is None:
                        raise  # the database is still away: 503; a retry finds the answer
                    if saved and built:
                        return built[0]
        logger.warning("database connection lost; the transaction runs again on a fresh one")
    raise AssertionError("unreachable")


async def _saved(request: Request, row_id: uuid.UUID) -> bool | None:
    """Whether a request whose COMMIT was cut off was saved, from its claim's row; None if
    the database cannot be asked."""
    try:
        return await reconnecting(lambda: service.is_saved(request.app.state.sessionmaker, row_id))
    except Exception as error:
        if database_unavailable(error):
            return None
        raise


async def _give_back(request: Request, row_id: uuid.UUID) -> None:
    """The request failed: give its key back, so a corrected retry runs. Only a claim still
    `in_progress` is given back, so a request that was saved (its COMMIT cut off) keeps its
    answer. If the database cannot be reached the claim stays until it counts as abandoned."""
    try:
        await service.release(request.app.state.sessionmaker, row_id)
    except Exception as error:
        if not database_unavailable(error):
            raise
        logger.warning("idempotency key not given back: %s", type(error).__name__)


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
