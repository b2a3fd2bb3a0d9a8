"""Idempotency-Key: the first request with a key runs; a retry gets the stored answer.

A key is claimed by inserting its row (unique per API key) in a transaction of its own
before the request runs, so of any number of concurrent requests with one key exactly one
runs; the others see the row and are answered 409 (still running), 422 (another request) or
the stored answer. A request that fails before its transaction commits gives its key back.

The claim is also a fence, and the answer is stored with the records: the request's own
transaction moves the row from `in_progress` to `completed` with the sealed answer
(`complete`) in the same COMMIT as its records, and cannot commit if the row is no longer
its own. So a request that was saved always has its answer for a retry, even when the
connection died as it committed; and a claim whose request has not committed after
ABANDONED_AFTER (its process died) can be taken over safely: if that request was only slow,
its commit now fails instead of creating the record twice.
"""

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.errors import Conflict, DomainError, Unprocessable
from app.idempotency.models import IdempotencyKey

HEADER = "Idempotency-Key"
# 1-255 printable ASCII characters (space to tilde).
KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"
_VALID_KEY = re.compile(KEY_PATTERN)

IN_PROGRESS = "in_progress"  # claimed, nothing committed yet
COMMITTED = "committed"  # the request's changes are saved but its answer could not be kept
COMPLETED = "completed"  # the request's changes are saved with its answer

# A claim this old whose request never committed belongs to a request that died.
ABANDONED_AFTER = timedelta(seconds=60)


class AnswerNotKept(DomainError):
    status = 422
    title = "Request already done"


class InvalidIdempotencyKey(DomainError):
    status = 400
    title = "Invalid Idempotency-Key"


def check_key(value: str) -> str:
    if not _VALID_KEY.fullmatch(value):
        raise InvalidIdempotencyKey(
            "invalid_idempotency_key",
            f"{HEADER} must be 1 to 255 printable ASCII characters.",
        )
    return value


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and the body's bytes."""
    return _sha256(method.encode(), path.encode(), body)


@dataclass(frozen=True)
class Sealer:
    """AES-GCM with a key derived from the caller's API key secret and the Idempotency-Key.

    The database holds only hashes of both, so a stored answer (which can carry a caller's
    name and number) can be opened only by a retry of the request that made it.
    """

    secret: str
    idempotency_key: str

    def _aead(self) -> AESGCM:
        key = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=b"handoff idempotent response v1\x00" + self.idempotency_key.encode(),
        ).derive(self.secret.encode())
        return AESGCM(key)

    def seal(self, plain: bytes, request_hash: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead().encrypt(nonce, plain, request_hash.encode())

    def open(self, sealed: bytes, request_hash: str) -> bytes | None:
        try:
            return self._aead().decrypt(sealed[:12], sealed[12:], request_hash.encode())
        except InvalidTag:
            return None


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    media_type: str | None
    sealed_body: bytes


async def claim(
    session: AsyncSession,
    *,
    api_key_id: uuid.UUID,
    idempotency_key: str,
    request_hash: str,
    now: datetime,
    ttl: timedelta,
) -> uuid.UUID | StoredAnswer:
    """Claim the key for this request (its row's id), or the answer its first request got.

    Raises 422 `idempotency_key_reused` for another request under the same key, 422
    `idempotency_answer_not_kept` for a request saved without its answer (only a response
    that is not a plain body, or a row left by an earlier release), and 409
    `idempotency_request_in_progress` while the first is still running.
    """
    key_hash = _sha256(idempotency_key.encode())
    for _ in range(3):
        row = IdempotencyKey(
            id=uuid.uuid4(),
            api_key_id=api_key_id,
            key_hash=key_hash,
            request_hash=request_hash,
            state=IN_PROGRESS,
            created_at=now,
            expires_at=now + ttl,
        )
        session.add(row)
        try:
            await session.commit()
            return row.id
        except IntegrityError:
            await session.rollback()
        except DBAPIError as error:
            if not error.connection_invalidated:
                raise
            # The connection died as the claim committed: ask a fresh one whether it did.
            await session.rollback()
            if await session.scalar(select(IdempotencyKey.id).where(IdempotencyKey.id == row.id)):
                return row.id
            continue
        existing = await session.scalar(
            select(IdempotencyKey).where(
                IdempotencyKey.api_key_id == api_key_id, IdempotencyKey.key_hash == key_hash
            )
        )
        if existing is None:  # its request failed and gave the key back: claim it again
            continue
        if existing.expires_at <= now or _abandoned(existing, now):
            # Expired, or claimed by a request that died before committing: start afresh.
            await session.execute(
                delete(IdempotencyKey).where(
                    IdempotencyKey.id == existing.id,
                    or_(
                        IdempotencyKey.expires_at <= now,
                        and_(
                            IdempotencyKey.state == IN_PROGRESS,
                            IdempotencyKey.created_at <= now - ABANDONED_AFTER,
                        ),
                    ),
                )
            )
            await session.commit()
            continue
        if existing.request_hash != request_hash:
            raise Unprocessable(
                "idempotency_key_reused",
                f"This {HEADER} was used for a different request; use a new key.",
            )
        if existing.state == COMMITTED:
            raise AnswerNotKept(
                "idempotency_answer_not_kept",
                f"The request with this {HEADER} was saved, but its answer was not kept. "
                "Do not send it again: read the record it made from the API's lists.",
            )
        if existing.state != COMPLETED or existing.response_status is None:
            break
        return StoredAnswer(
            existing.response_status, existing.response_media_type, existing.response_body or b""
        )
    raise Conflict(
        "idempotency_request_in_progress",
        f"A request with this {HEADER} is still running; retry after it has finished.",
        headers={"Retry-After": "1"},
    )


def _abandoned(row: IdempotencyKey, now: datetime) -> bool:
    return row.state == IN_PROGRESS and row.created_at <= now - ABANDONED_AFTER


async def complete(
    session: AsyncSession,
    row_id: uuid.UUID,
    *,
    status: int,
    media_type: str | None,
    sealed_body: bytes | None,
) -> None:
    """In the request's own transaction, just before it commits: the claim is still ours,
    and becomes `completed` with the answer (`committed` when there is no body to keep)."""
    result = await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == row_id, IdempotencyKey.state == IN_PROGRESS)
        .values(
            state=COMPLETED if sealed_body is not None else COMMITTED,
            response_status=status,
            response_media_type=media_type,
            response_body=sealed_body,
        )
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            "idempotency_request_in_progress",
            f"This request took so long that a retry with its {HEADER} took over; "
            "nothing was saved by this one.",
        )


async def is_saved(sessionmaker: async_sessionmaker[AsyncSession], row_id: uuid.UUID) -> bool:
    """Whether the request holding this claim was saved (its COMMIT was cut off)."""
    async with sessionmaker() as session:
        state = await session.scalar(
            select(IdempotencyKey.state).where(IdempotencyKey.id == row_id)
        )
    return state in (COMPLETED, COMMITTED)


async def release(sessionmaker: async_sessionmaker[AsyncSession], row_id: uuid.UUID) -> None:
    """Give the key back: its request saved nothing, so a retry may run it again."""
    async with sessionmaker() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.id == row_id, IdempotencyKey.state == IN_PROGRESS
            )
        )
        await session.commit()


async def purge_expired_idempotency_keys(session: AsyncSession, now: datetime) -> int:
    """Delete keys (and their stored answers) whose time is up. The caller commits."""
    result = await session.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at <= now))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
