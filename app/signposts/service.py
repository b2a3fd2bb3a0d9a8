import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.core.access import get_visible, visible_to
from app.core.auth import Principal
from app.core.errors import Unprocessable
from app.core.months import Month
from app.core.pagination import newest_first, split_page
from app.core.rules import not_in_future
from app.protocol.context import RequestContext
from app.protocol.exceptions import contact_reason_problem, no_route
from app.signposts.models import Signpost
from app.signposts.schemas import SignpostCreate


def record_signpost(
    session: AsyncSession,
    principal: Principal,
    ctx: RequestContext,
    body: SignpostCreate,
) -> Signpost:
    route = ctx.routes.route(principal.body, body.to_org)
    if route is None:
        raise no_route(principal.body, body.to_org)
    problem = contact_reason_problem(route, body.contact_reason)
    if problem is not None:
        raise problem
    signpost = Signpost(
        id=uuid.uuid4(),
        from_org=principal.body,
        to_org=body.to_org,
        signposted_at=not_in_future(
            body.signposted_at or ctx.now, ctx.now, ctx.skew_seconds, "signposted_at"
        ),
        sender_reference=body.sender_reference,
        contact_reason=body.contact_reason,
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


async def list_signposts(
    session: AsyncSession,
    principal: Principal,
    *,
    month: Month | None = None,
    to_org: str | None = None,
    contact_reason: str | None = None,
    no_contact_reason: bool = False,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[Signpost], str | None]:
    """The body's signposts, newest first, a keyset page at a time; `month` is the UK month
    of `signposted_at`, the one the report counts it in."""
    query = select(Signpost).where(visible_to(Signpost, principal.body))
    if month is not None:
        start, end = month.utc_range()
        query = query.where(Signpost.signposted_at >= start, Signpost.signposted_at < end)
    if to_org is not None:
        query = query.where(Signpost.to_org == to_org)
    if contact_reason is not None:
        if no_contact_reason:
            raise Unprocessable(
                "conflicting_filters", "Give contact_reason or no_contact_reason, not both."
            )
        query = query.where(Signpost.contact_reason == contact_reason)
    if no_contact_reason:
        query = query.where(Signpost.contact_reason.is_(None))
    query = newest_first(query, Signpost.created_at, Signpost.id, cursor, limit)
    rows = list((await session.scalars(query)).all())
    return split_page(rows, limit, lambda s: (s.created_at, s.id))
