"""The report's call back figures: what became of each direction's call back requests.

Everything is counted in SQL, a few statements per report whatever the table's size:
requests made by `requested_at`, first attempts by `first_attempt_at` and closings by
`closed_at` (each a range over its indexed column, bucketed per month), and what was open
and overdue at each month's end. Medians and 90th percentiles aggregate the working seconds
stored on each row when it was first attempted or closed (app/callbacks/lifecycle.py):
`percentile_cont` on PostgreSQL, and on SQLite, which has none, the same interpolation
written with window functions (`percentiles_by_window`), so both give the same numbers.

No figure reads `caller_details`: purging a caller's details changes none of them.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.callbacks.lifecycle import CallbackOutcome
from app.callbacks.models import CallbackRequest
from app.core.months import Month
from app.reports.schemas import CallbackMeasures

Direction = tuple[str, str]
PERCENTILES = (("median", 0.5), ("p90", 0.9))

_R = CallbackRequest


def bucket(column: Any, boundaries: Sequence[datetime]) -> ColumnElement[Any]:
    """Index of the [boundaries[i], boundaries[i+1]) range that `column` falls in.

    For two ranges (a month and the one before, what every report counts) it is the
    comparison itself, false or true (0 or 1 as an index): PostgreSQL knows a boolean has two
    values, so it hashes the groups; a CASE's values it takes to be one per row, and then
    sorts every row of the range instead, spilling to disk (EXPLAIN in bench/RESULTS.md)."""
    inner = boundaries[1:-1]
    if len(inner) == 1:
        return column >= inner[0]
    whens = [(column < end, i) for i, end in enumerate(inner)]
    return case(*whens, else_=len(boundaries) - 2) if whens else literal(0)


def _in_range(column: Any, boundaries: Sequence[datetime]) -> ColumnElement[bool]:
    return and_(column >= boundaries[0], column < boundaries[-1])


def boundaries_of(months: Sequence[Month]) -> list[datetime]:
    return [m.utc_range()[0] for m in months] + [months[-1].utc_range()[1]]


def made_statement(boundaries: Sequence[datetime]) -> Select:  # type: ignore[type-arg]
    """Requests made per direction and month."""
    return (
        select(
            _R.from_org,
            _R.to_org,
            bucket(_R.requested_at, boundaries).label("bucket"),
            func.count().label("n"),
        )
        .where(_in_range(_R.requested_at, boundaries))
        .group_by(_R.from_org, _R.to_org, "bucket")
    )


def closed_statement(boundaries: Sequence[datetime]) -> Select:  # type: ignore[type-arg]
    """Requests closed per direction, outcome and month."""
    return (
        select(
            _R.from_org,
            _R.to_org,
            _R.outcome,
            bucket(_R.closed_at, boundaries).label("bucket"),
            func.count().label("n"),
        )
        .where(_in_range(_R.closed_at, boundaries))
        .group_by(_R.from_org, _R.to_org, _R.outcome, "bucket")
    )


def open_at_statement(moments: Sequence[datetime]) -> Any:
    """Per direction and moment: how many requests were open then, and how many of those
    overdue (past their first-attempt target without an attempt, or past their close target:
    app.callbacks.lifecycle.is_overdue, as it stood at that moment)."""
    parts = []
    for index, at in enumerate(moments):
        overdue = or_(
            and_(
                _R.first_attempt_due_at < at,
                or_(_R.first_attempt_at.is_(None), _R.first_attempt_at >= at),
            ),
            _R.close_due_at < at,
        )
        parts.append(
            select(
                _R.from_org,
                _R.to_org,
                literal(index).label("bucket"),
                func.count().label("open"),
                func.coalesce(func.sum(case((overdue, 1), else_=0)), 0).label("overdue"),
            )
            .where(_R.requested_at < at, or_(_R.closed_at.is_(None), _R.closed_at >= at))
            .group_by(_R.from_org, _R.to_org)
        )
    return union_all(*parts)


def percentiles_by_window(
    value: Any,
    moment: Any,
    boundaries: Sequence[datetime],
    model: Any = _R,
    groups: Sequence[Any] | None = None,
) -> Select[Any]:
    """percentile_cont for SQLite: within each group, the value at the fractional position
    p * (n - 1) of the ordered values, interpolated linearly between its neighbours. Groups
    are labelled columns (unless given, the direction: `model`'s `from_org` and `to_org`)
    and the month."""
    if groups is None:
        groups = [model.from_org.label("from_org"), model.to_org.label("to_org")]
    in_range = bucket(moment, boundaries).label("bucket")
    partition = [*groups, in_range]
    ranked = (
        select(
            *groups,
            in_range,
            value.label("v"),
            (func.row_number().over(partition_by=partition, order_by=value) - 1).label("rn"),
            func.count().over(partition_by=partition).label("n"),
        )
        .where(_in_range(moment, boundaries), value.is_not(None))
        .subquery()
    )
    columns = []
    for name, p in PERCENTILES:
        position = literal(p) * (ranked.c.n - 1)
        # floor (the position is never negative): CAST truncates on SQLite, rounds on
        # PostgreSQL, so step back where it rounded up and the statement means one thing on both.
        cast_ = cast(position, Integer)
        low = case((cast_ > position, cast_ - 1), else_=cast_)
        fraction = position - low
        columns.append(
            func.sum(
                case(
                    (ranked.c.rn == low, ranked.c.v * (1 - fraction)),
                    (ranked.c.rn == low + 1, ranked.c.v * fraction),
                    else_=0,
                )
            ).label(name)
        )
    keys = [ranked.c[group.name] for group in groups] + [ranked.c.bucket]
    return select(*keys, *columns).group_by(*keys)


def times_statement(
    dialect: str, value: Any, moment: Any, boundaries: Sequence[datetime], model: Any = _R
) -> Select[Any]:
    """Median and 90th percentile of `value` per direction (of `model`) and month of `moment`."""
    if dialect == "postgresql":
        return (
            select(
                model.from_org,
                model.to_org,
                bucket(moment, boundaries).label("bucket"),
                *[
                    func.percentile_cont(p).within_group(value).label(name)
                    for name, p in PERCENTILES
                ],
            )
            .where(_in_range(moment, boundaries), value.is_not(None))
            .group_by(model.from_org, model.to_org, "bucket")
        )
    return percentiles_by_window(value, moment, boundaries, model)


def first_attempt_statement(boundaries: Sequence[datetime]) -> Select[Any]:
    """First attempts per direction and month, and how many were within their target."""
    within = case((_R.first_attempt_at <= _R.first_attempt_due_at, 1), else_=0)
    return (
        select(
            _R.from_org,
            _R.to_org,
            bucket(_R.first_attempt_at, boundaries).label("bucket"),
            func.count().label("n"),
            func.coalesce(func.sum(within), 0).label("within"),
        )
        .where(_in_range(_R.first_attempt_at, boundaries))
        .group_by(_R.from_org, _R.to_org, "bucket")
    )


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 2)


EMPTY = CallbackMeasures.model_validate(
    {
        name: (None if "hours" in name or name.endswith("percent") else 0)
        for name in CallbackMeasures.model_fields
    }
)


async def _time_figures(
    session: AsyncSession, months: Sequence[Month], boundaries: Sequence[datetime]
) -> dict[tuple[Month, Direction], dict[str, Any]]:
    dialect = session.get_bind().dialect.name
    found: dict[tuple[Month, Direction], dict[str, Any]] = {}

    def put(row: Any, values: dict[str, Any]) -> None:
        found.setdefault((months[row.bucket], (row.from_org, row.to_org)), {}).update(values)

    for row in await session.execute(first_attempt_statement(boundaries)):
        percent = round(row.within * 100 / row.n, 1) if row.n else None
        put(
            row,
            {
                "first_attempts": row.n,
                "first_attempts_within_target": row.within,
                "first_attempts_within_target_percent": percent,
            },
        )
    for prefix, value, moment in (
        ("first_attempt_hours", _R.first_attempt_working_seconds, _R.first_attempt_at),
        ("close_hours", _R.close_working_seconds, _R.closed_at),
    ):
        for row in await session.execute(times_statement(dialect, value, moment, boundaries)):
            put(row, {f"{prefix}_{name}": _hours(getattr(row, name)) for name, _ in PERCENTILES})
    return found


async def callback_figures(
    session: AsyncSession, months: Sequence[Month], now: datetime
) -> dict[tuple[Month, Direction], CallbackMeasures]:
    """Call back figures per consecutive month and direction; directions with nothing in
    a month are left out (read them as EMPTY)."""
    boundaries = boundaries_of(months)
    found = await _time_figures(session, months, boundaries)

    def put(month: Month, direction: Direction, values: dict[str, Any]) -> None:
        found.setdefault((month, direction), {}).update(values)

    for row in await session.execute(made_statement(boundaries)):
        put(months[row.bucket], (row.from_org, row.to_org), {"requests_made": row.n})
    for row in await session.execute(closed_statement(boundaries)):
        if row.outcome in set(CallbackOutcome):
            key = (months[row.bucket], (row.from_org, row.to_org))
            counts = found.setdefault(key, {})
            name = f"closed_{row.outcome}"
            counts[name] = counts.get(name, 0) + row.n
    ends = [min(m.utc_range()[1], now) for m in months]
    for row in await session.execute(open_at_statement(ends)):
        put(
            months[row.bucket],
            (row.from_org, row.to_org),
            {"open_at_month_end": row.open, "overdue_at_month_end": row.overdue},
        )
    return {
        key: CallbackMeasures.model_validate({**EMPTY.model_dump(), **values})
        for key, values in found.items()
    }


async def first_attempt_trend(
    session: AsyncSession, months: Sequence[Month]
) -> dict[tuple[Month, Direction], tuple[float | None, float | None]]:
    """Median and 90th percentile working hours to the first attempt, per month and
    direction (for the report page's chart): one statement."""
    boundaries = boundaries_of(months)
    dialect = session.get_bind().dialect.name
    statement = times_statement(
        dialect, _R.first_attempt_working_seconds, _R.first_attempt_at, boundaries
    )
    return {
        (months[row.bucket], (row.from_org, row.to_org)): (
            _hours(row.median),
            _hours(row.p90),
        )
        for row in await session.execute(statement)
    }
