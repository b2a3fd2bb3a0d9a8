"""API keys as bearer tokens: who is calling, for which body, in which role."""

import hashlib
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import get_session
from app.core.errors import Forbidden, Unauthorized
from app.keys.models import ApiKey


class Role(StrEnum):
    agent = "agent"
    team_leader = "team_leader"
    admin = "admin"


# Each role can do everything the roles before it can.
_RANK = {Role.agent: 0, Role.team_leader: 1, Role.admin: 2}


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    org: str
    role: Role

    def can(self, role: Role) -> bool:
        return _RANK[self.role] >= _RANK[role]


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hk_...`")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="handoff"'}


async def principal_for_secret(session: AsyncSession, secret: str) -> Principal | None:
    row = (
        await session.execute(
            select(ApiKey.id, ApiKey.org, ApiKey.role).where(
                ApiKey.key_hash == hash_key(secret), ApiKey.revoked_at.is_(None)
            )
        )
    ).first()
    return Principal(row.id, row.org, Role(row.role)) if row else None


async def current_principal(
    request: Request,
    session: Annotated[AsyncSession, Depends(get_session)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(
            "unauthenticated",
            "Send an API key as 'Authorization: Bearer <key>'.",
            headers=_CHALLENGE,
        )
    principal = await principal_for_secret(session, credentials.credentials)
    if principal is None:
        raise Unauthorized(
            "invalid_api_key",
            "The API key is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer realm="handoff", error="invalid_token"'},
        )
    request.state.principal = principal
    return principal


def require(role: Role):  # type: ignore[no-untyped-def]
    """A dependency that lets through keys of `role` or above."""

    async def _dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.can(role):
            raise Forbidden("insufficient_role", f"This needs a key with the {role} role.")
        return principal

    return _dependency


AnyKey = Annotated[Principal, Depends(current_principal)]
TeamLeader = Annotated[Principal, Depends(require(Role.team_leader))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
