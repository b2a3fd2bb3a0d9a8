"""Changing a record that carries a `version` column, one change at a time: read it (locked
with FOR UPDATE on PostgreSQL) through the access rule, decide, then one conditional UPDATE
that applies only if nobody changed it since it was read. A change that loses is decided
again on what the winner left, up to CHANGE_TRIES times, then 409 `concurrent_change`.
Used by the call back lifecycle and the feedback's answer."""

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.access import get_visible_row
from app.core.errors import Conflict

T = TypeVar("T")

# How often a change lost to a concurrent one is decided again before giving up with 409.
CHANGE_TRIES = 3


async def load_for_change(
    session: AsyncSession,
    model: type[T],
    record_id: uuid.UUID,
    body: str,
    *,
    name: str,
    also: Sequence[str],
    again: bool,
) -> T:
    """The record, if `body` may see it, locked; `again` reads it afresh after a lost change."""
    query = select(model)
    if again:
        query = query.execution_options(populate_existing=True)
    row = await get_visible_row(
        session, query, model, record_id, body, name=name, also=also, for_update=True
    )
    return row[0]  # type: ignore[no-any-return]


async def save_if_unchanged(session: AsyncSession, record: Any, **values: Any) -> bool:
    """One conditional UPDATE, raising the version: applied only if the record's version is
    still the one read."""
    model = type(record)
    result = await session.execute(
        update(model)
        .where(model.id == record.id, model.version == record.version)
        .values(version=record.version + 1, **values)
        .execution_options(synchronize_session="evaluate")
    )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def concurrent_change() -> Conflict:
    return Conflict(
        "concurrent_change",
        "Another request changed this record at the same moment; read it and try again.",
    )
