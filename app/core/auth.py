"""API keys as bearer tokens: who is calling, for which body, in which role."""

import hashlib
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.api_keys import ApiKey
from app.core.database import get_session
from app.core.errors import Forbidden, Unauthorized


class Role(StrEnum):
    agent = "agent"
    team_leader = "team_leader"
    admin = "admin"
    # Reads the complete monthly reports of both bodies, nothing else (ISA Appendix 2 s.6.1).
    relationship_owner = "relationship_owner"


# Each role of the rank can do everything the roles before it can. A role outside the rank
# (relationship_owner) can do only what an endpoint admits it to by name: every endpoint that
# asks for a rank refuses it, whatever is added later.
_RANK = {Role.agent: 0, Role.team_leader: 1, Role.admin: 2}


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    body: str  # the body the key belongs to (the api_keys.org column)
    role: Role

    def can(self, role: Role) -> bool:
        if self.role not in _RANK or role not in _RANK:
            return self.role == role
        return _RANK[self.role] >= _RANK[role]


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hk_...`")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="handoff"'}


# A key that was found is remembered for a few seconds in each process, so that most requests
# skip one query. The cost: a key revoked by another process (another worker, the CLI) still
# works for at most PRINCIPAL_CACHE_SECONDS; in the process that revoked it, at once
# (`forget_principal`). Unknown and revoked keys are never remembered.
PRINCIPAL_CACHE_SECONDS = 5.0
_PRINCIPAL_CACHE_MAX = 10_000
_principals: dict[str, tuple[float, Principal]] = {}
_monotonic = time.monotonic  # a name of our own, for tests to move
_find_key = select(ApiKey.id, ApiKey.org, ApiKey.role).where(
    ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None)
)


async def principal_for_secret(session: AsyncSession, secret: str) -> Principal | None:
    key_hash = hash_key(secret)
    moment = _monotonic()
    cached = _principals.get(key_hash)
    if cached is not None and cached[0] > moment:
        return cached[1]
    row = (await session.execute(_find_key, {"key_hash": key_hash})).first()
    if row is None:
        _principals.pop(key_hash, None)
        return None
    principal = Principal(row.id, row.org, Role(row.role))
    if len(_principals) >= _PRINCIPAL_CACHE_MAX:
        _principals.clear()
    _principals[key_hash] = (moment + PRINCIPAL_CACHE_SECONDS, principal)
    return principal


def forget_principal(key_id: uuid.UUID) -> None:
    """Stop trusting a remembered key in this process (call when it is revoked)."""
    for key_hash, (_, principal) in list(_principals.items()):
        if principal.key_id == key_id:
            del _principals[key_hash]


def bearer_secret(request: Request) -> str | None:
    """The key from `Authorization: Bearer <key>`, if the request sent one."""
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    secret = secret.strip()
    return secret if scheme.lower() == "bearer" and secret else None


async def identify(request: Request, session: AsyncSession) -> Principal | None:
    """The calling key, or None if unknown or revoked. Counts the request against the key's
    rate limit (429 when over), once per request however often it is asked."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    secret = bearer_secret(request)
    principal = await principal_for_secret(session, secret) if secret else None
    if principal is None:
        return None
    await request.app.state.rate_limiter.hit(str(principal.key_id))
    request.state.principal = principal
    return principal


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
    principal = await identify(request, session)
    if principal is None:
        raise Unauthorized(
            "invalid_api_key",
            "The API key is unknown or revoked.",
            headers={"WWW-Authenticate": 'Bearer realm="handoff", error="invalid_token"'},
        )
    return principal


def require(role: Role, *also: Role):  # type: ignore[no-untyped-def]
    """A dependency that lets through keys of `role` or above, and keys of the roles `also`
    names (a role outside the rank is let in only where it is named)."""

    async def _dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not any(principal.can(r) for r in (role, *also)):
            raise Forbidden("insufficient_role", f"This needs a key with the {role} role.")
        return principal

    _dependency.required_role = role  # type: ignore[attr-defined]  # read by core.openapi
    _dependency.admits = (role, *also)  # type: ignore[attr-defined]  # read by core.hot_path
    return _dependency


# Any key of the rank: an adviser's (agent), a team leader's or an admin's.
AnyKey = Annotated[Principal, Depends(require(Role.agent))]
TeamLeader = Annotated[Principal, Depends(require(Role.team_leader))]
Admin = Annotated[Principal, Depends(require(Role.admin))]
# The complete monthly reports: team leaders (and above) and relationship owners.
ReportReader = Annotated[Principal, Depends(require(Role.team_leader, Role.relationship_owner))]
