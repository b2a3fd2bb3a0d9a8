import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.access import get_visible
from app.core.auth import Principal
from app.core.rules import not_in_future
from app.protocol.context import RequestContext
from app.protocol.exceptions import no_route
from app.signposts.models import Signpost
from app.signposts.schemas import SignpostCreate


def record_signpost(
    session: AsyncSession,
    principal: Principal,
    ctx: RequestContext,
    body: SignpostCreate,
) -> Signpost:
    if ctx.routes.route(principal.body, body.to_org) is None:
        raise no_route(principal.body, body.to_org)
    signpost = Signpost(
        id=uuid.uuid4(),
        from_org=principal.body,
        to_org=body.to_org,
        signposted_at=not_in_future(
            body.signposted_at or ctx.now, ctx.now, ctx.skew_seconds, "signposted_at"
        ),
        sender_reference=body.sender_reference,
        created_by_key_id=principal.key_id,
        created_at=ctx.now,
    )
    session.add(signpost)
    audit.created(session, principal, audit.RecordType.signpost, signpost.id, ctx.now)
    return signpost


async def get_signpost(
    session: AsyncSession, principal: Principal, signpost_id: uuid.UUID
) -> Signpost:
    return await get_visible(session, Signpost, signpost_id, principal.body, name="signpost")
