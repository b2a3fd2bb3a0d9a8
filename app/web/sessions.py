"""The web session: a signed cookie holding the signed-in key's id, the id of its session
row (`web_sessions`) and a CSRF token.

The cookie holds no secret and no personal data: the key and the session row are looked up
(and the key's revocation checked) on every request, so signing out, which deletes the row,
ends the session on the server too: a copy of the cookie saved before no longer works. It is
HttpOnly and SameSite=Strict, Secure when the settings say the service is behind HTTPS, and it
lasts until the browser closes or MAX_AGE after sign-in; rows older than that are deleted.
"""

import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.web.models import WebSessionRecord

COOKIE = "handoff_session"
MAX_AGE_SECONDS = 8 * 60 * 60  # a working day
# A refused form's values (caller details among them) wait this long at most for their page.
FLASH_MAX_AGE_SECONDS = 5 * 60
_SALT = "handoff.web.session"


def _new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class WebSession:
    key_id: uuid.UUID | None = None
    csrf_token: str = field(default_factory=_new_token)
    changed: bool = False
    session_id: uuid.UUID | None = None  # the `web_sessions` row of a signed-in session

    def dump(self) -> dict[str, Any]:
        return {
            "k": str(self.key_id) if self.key_id else None,
            "s": str(self.session_id) if self.session_id else None,
            "c": self.csrf_token,
        }

    @classmethod
    def load(cls, data: Any) -> "WebSession | None":
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        try:
            key_id = uuid.UUID(data["k"]) if data.get("k") else None
            session_id = uuid.UUID(data["s"]) if data.get("s") else None
        except (ValueError, TypeError):
            return None
        if key_id is not None and session_id is None:
            key_id = None  # a cookie from before sessions were kept: signed out
        return cls(key_id=key_id, csrf_token=data["c"], session_id=session_id)

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token, str(token))


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(request.app.state.session_secret, salt=_SALT)


def current(request: Request) -> WebSession:
    """The request's web session; a new anonymous one (with a CSRF token for the sign-in form)
    when the cookie is missing, tampered with or expired."""
    existing = getattr(request.state, "web_session", None)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    web_session = None
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            web_session = WebSession.load(_serializer(request).loads(raw, max_age=MAX_AGE_SECONDS))
        except BadSignature:  # also covers SignatureExpired
            web_session = None
    if web_session is None:
        web_session = WebSession(changed=True)
    request.state.web_session = web_session
    return web_session


def renew(request: Request, key_id: uuid.UUID | None) -> WebSession:
    """A fresh web session (new CSRF token) for a sign-in or sign-out: nothing carries over."""
    web_session = WebSession(key_id=key_id, changed=True)
    request.state.web_session = web_session
    return web_session


async def sign_in(request: Request, session: AsyncSession, key_id: uuid.UUID) -> WebSession:
    """A new web session for `key_id`, kept on the server; expired rows are deleted on the way.

    A web session's life is measured in real time, as the cookie's signed timestamp is, not by
    the service's (injectable) clock of business time."""
    now = datetime.now(UTC)
    expired = now - timedelta(seconds=MAX_AGE_SECONDS)
    await session.execute(delete(WebSessionRecord).where(WebSessionRecord.started_at < expired))
    record = WebSessionRecord(id=uuid.uuid4(), key_id=key_id, started_at=now)
    session.add(record)
    web_session = renew(request, key_id)
    web_session.session_id = record.id
    return web_session


async def sign_out(request: Request, session: AsyncSession) -> WebSession:
    """End the request's web session on the server, and give the browser an anonymous one."""
    session_id = current(request).session_id
    if session_id is not None:
        await session.execute(delete(WebSessionRecord).where(WebSessionRecord.id == session_id))
    return renew(request, None)


def write(request: Request, response: Response) -> None:
    """Set the cookie on `response` if the web session is new or changed in this request."""
    web_session: WebSession | None = getattr(request.state, "web_session", None)
    if web_session is None or not web_session.changed:
        return
    response.set_cookie(
        COOKIE,
        _serializer(request).dumps(web_session.dump()),
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.secure_cookies,
        path="/",
    )


async def keep_for(request: Request, db: AsyncSession, path: str, data: dict[str, Any]) -> None:
    """Keep `data` (a refused form's values and problems) on the session's row for the next
    GET of `path`, which shows and clears it; flashes left unshown past their few minutes,
    this session's or another's, are cleared on the way. Never logged."""
    session_id = current(request).session_id
    if session_id is None:
        return
    now = datetime.now(UTC)
    stale = now - timedelta(seconds=FLASH_MAX_AGE_SECONDS)
    await db.execute(
        update(WebSessionRecord)
        .where(WebSessionRecord.flash_at < stale)
        .values(flash=None, flash_at=None)
    )
    await db.execute(
        update(WebSessionRecord)
        .where(WebSessionRecord.id == session_id)
        .values(flash={"path": path, "data": data}, flash_at=now)
    )


async def take_for(request: Request, db: AsyncSession, path: str) -> dict[str, Any] | None:
    """What `keep_for` kept for `path`, once: it is cleared as it is read (the caller commits).
    None when there is none, it is for another page, or it is older than its few minutes."""
    session_id = current(request).session_id
    if session_id is None:
        return None
    row = (
        await db.execute(
            select(WebSessionRecord.flash, WebSessionRecord.flash_at).where(
                WebSessionRecord.id == session_id, WebSessionRecord.flash.is_not(None)
            )
        )
    ).first()
    if row is None or not isinstance(row.flash, dict) or row.flash.get("path") != path:
        return None
    await db.execute(
        update(WebSessionRecord)
        .where(WebSessionRecord.id == session_id)
        .values(flash=None, flash_at=None)
    )
    fresh = row.flash_at is not None and (
        datetime.now(UTC) - row.flash_at < timedelta(seconds=FLASH_MAX_AGE_SECONDS)
    )
    data = row.flash.get("data")
    return data if fresh and isinstance(data, dict) else None
