"""Keyset pagination over (timestamp, id), newest first: stable under concurrent inserts."""

import base64
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Query
from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

from app.core.errors import Unprocessable

Q = TypeVar("Q", bound=Select)  # type: ignore[type-arg]

# Largest page any list endpoint gives.
MAX_PAGE_SIZE = 100
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")]
Cursor = Annotated[
    str | None, Query(max_length=200, description="`next_cursor` of the page before.")
]


def encode_cursor(moment: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([moment.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, row_id = json.loads(raw)
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, uuid.UUID(row_id)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise Unprocessable("invalid_cursor", "The cursor is not one this API gave out.") from exc


T = TypeVar("T")


def split_page(
    rows: list[T], limit: int, position: Callable[[T], tuple[datetime, uuid.UUID]]
) -> tuple[list[T], str | None]:
    """The page and the cursor for the next one, from the `limit + 1` rows `newest_first`
    asked for (the extra row only says that there is more)."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(*position(rows[-1]))


def newest_first(
    query: Q,
    moment: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    cursor: str | None,
    limit: int,
) -> Q:
    if cursor is not None:
        at, last_id = decode_cursor(cursor)
        query = query.where(or_(moment < at, and_(moment == at, row_id < last_id)))
    return query.order_by(moment.desc(), row_id.desc()).limit(limit + 1)  # type: ignore[return-value]
