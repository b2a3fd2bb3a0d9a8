"""Creating, listing and revoking API keys. Secrets are shown once and stored as a hash."""

import secrets
import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.access import get_visible, visible_to
from app.core.auth import Principal, Role, forget_principal, hash_key
from app.core.errors import Unprocessable
from app.core.pagination import newest_first, split_page
from app.keys.models import ApiKey
from app.protocol.routes import RouteTable

KEY_PREFIX = "hk_"


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def create_key(
    session: AsyncSession,
    routes: RouteTable,
    *,
    org: str,
    role: Role,
    name: str,
    now: datetime,
    actor: audit.Actor | Principal,
) -> tuple[ApiKey, str]:
    if routes.body(org) is None:
        raise Unprocessable("unknown_org", f"No body '{org}' in the route table.")
    secret = new_secret()
    key = ApiKey(
        id=uuid.uuid4(),
        org=org,
        role=Role(role).value,
        name=name,
        key_hash=hash_key(secret),
        key_prefix=secret[: len(KEY_PREFIX) + 6],
        created_at=now,
    )
    session.add(key)
    audit.record(
        session, actor, audit.AuditAction.create, audit.RecordType.api_key, key.id, org=org, now=now
    )
    await session.flush()
    return key, secret


async def list_keys(session: AsyncSession, org: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if org is not None:
        query = query.where(visible_to(ApiKey, org, owner="org"))
    return list((await session.scalars(query)).all())


async def page_of_keys(
    session: AsyncSession, org: str, *, limit: int, cursor: str | None
) -> tuple[list[ApiKey], str | None]:
    """A body's keys, newest first, a page at a time."""
    own = select(ApiKey).where(visible_to(ApiKey, org, owner="org"))
    query = newest_first(own, ApiKey.created_at, ApiKey.id, cursor, limit)
    rows = list((await session.scalars(query)).all())
    return split_page(rows, limit, lambda key: (key.created_at, key.id))


async def revoke_key(
    session: AsyncSession,
    key_id: uuid.UUID,
    *,
    now: datetime,
    actor: audit.Actor | Principal,
    org: str | None = None,
) -> ApiKey:
    key = await get_visible(session, ApiKey, key_id, org, name="key", owner="org")
    if key.revoked_at is None:
        key.revoked_at = now
        audit.record(
            session,
            actor,
            audit.AuditAction.revoke,
            audit.RecordType.api_key,
            key.id,
            org=key.org,
            now=now,
        )
    forget_principal(key.id)
    return key
