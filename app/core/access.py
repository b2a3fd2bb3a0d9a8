"""The one access rule: a body sees its own records; another body's record is "not found".

"Not found", never "forbidden": another body's record's existence is not ours to know. Every
lookup of a record by id goes through `get_visible` (or `get_visible_row`), so the rule is
written once; `also` names further columns that admit the body too, for a later rule such
as "or the body it is addressed to".
"""

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Row, Select, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound

T = TypeVar("T")


def visible_to(
    model: Any, body: str | None, *, owner: str = "from_org", also: Sequence[str] = ()
) -> Any:
    """The WHERE clause of the rule, for lookups and lists alike: the records `body` may see
    (None: every body's, as the CLI sees them)."""
    if body is None:
        return True
    if not also:
        return getattr(model, owner) == body
    return or_(*(getattr(model, column) == body for column in (owner, *also)))


async def get_visible_row(
    session: AsyncSession,
    query: Select[Any],
    model: Any,
    record_id: uuid.UUID,
    body: str | None,
    *,
    name: str,
    owner: str = "from_org",
    also: Sequence[str] = (),
    for_update: bool = False,
) -> Row[Any]:
    """The first row of `query` (whose entities include `model`) for the record `record_id`
    if `body` may see it, else 404 `not_found` ("No such <name>.")."""
    query = query.where(model.id == record_id, visible_to(model, body, owner=owner, also=also))
    if for_update:
        # FOR UPDATE (PostgreSQL) serialises two changes of one record at once.
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    if row is None:
        raise NotFound("not_found", f"No such {name}.")
    return row


async def get_visible(
    session: AsyncSession, model: type[T], record_id: uuid.UUID, body: str | None, **rule: Any
) -> T:
    """The record `record_id` of `model` if the body `body` may see it, else 404; `rule`:
    `name`, and `owner`, `also`, `for_update` as for `get_visible_row`."""
    row = await get_visible_row(session, select(model), model, record_id, body, **rule)
    return row[0]  # type: ignore[no-any-return]
