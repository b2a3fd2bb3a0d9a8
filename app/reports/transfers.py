"""The report's time to answer: how quickly each direction's warm transfers were answered.

The counts behind the share (answered within the wait limit, callers who waited) are the
month's transfer figures (service.count_contacts), so they always agree with them; the median
and 90th percentile of the seconds from `wait_started_at` to `connected_at` are computed in
SQL by callbacks.times_statement: `percentile_cont` on PostgreSQL, the same interpolation
with window functions on SQLite. A transfer counts in the month of its `outcome_at` (its
`connected_at`), as every transfer figure does.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Float, case, cast, extract, func
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.months import Month
from app.reports.callbacks import PERCENTILES, boundaries_of, times_statement
from app.reports.schemas import AnswerMeasures, Figures
from app.transfers.models import Transfer
from app.transfers.schemas import TransferStatus

Direction = tuple[str, str]

EMPTY = AnswerMeasures(
    answered=0,
    answered_within_threshold=0,
    waited=0,
    answered_within_threshold_percent=None,
    answer_seconds_median=None,
    answer_seconds_p90=None,
)


def answer_seconds(dialect: str) -> Any:
    """Seconds from the start of the wait to the answer, for connected transfers (NULL for
    any other: percentiles leave NULLs out). SQLite keeps timestamps as text: julianday's
    days, in seconds, rounded to the millisecond so that floating point adds no noise."""
    seconds: Any
    if dialect == "postgresql":
        seconds = cast(extract("epoch", Transfer.connected_at - Transfer.wait_started_at), Float)
    else:
        seconds = func.round(
            (func.julianday(Transfer.connected_at) - func.julianday(Transfer.wait_started_at))
            * 86400,
            3,
        )
    return case((Transfer.status == TransferStatus.connected.value, seconds), else_=None)


def answer_times_statement(dialect: str, months: Sequence[Month]) -> Any:
    """Median and 90th percentile seconds to answer per direction and month."""
    return times_statement(
        dialect, answer_seconds(dialect), Transfer.outcome_at, boundaries_of(months), Transfer
    )


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def answer_measures(figures: Figures, times: tuple[float | None, float | None]) -> AnswerMeasures:
    """A month's answer figures of one direction from its transfer figures and its times."""
    answered = figures.warm_transfers_connected
    within = answered - figures.warm_transfers_connected_after_threshold
    # Answered after the limit is in the denominator: "not within".
    waited = answered + figures.callbacks_wait_threshold_exceeded + figures.callers_hung_up
    return AnswerMeasures(
        answered=answered,
        answered_within_threshold=within,
        waited=waited,
        answered_within_threshold_percent=round(within * 100 / waited, 1) if waited else None,
        answer_seconds_median=_seconds(times[0]),
        answer_seconds_p90=_seconds(times[1]),
    )


async def answer_times(
    session: AsyncSession, months: Sequence[Month]
) -> dict[tuple[Month, Direction], tuple[float | None, float | None]]:
    """(median, 90th percentile) seconds to answer per month and direction: one statement."""
    dialect = session.get_bind().dialect.name
    return {
        (months[row.bucket], (row.from_org, row.to_org)): tuple(  # type: ignore[misc]
            getattr(row, name) for name, _ in PERCENTILES
        )
        for row in await session.execute(answer_times_statement(dialect, months))
    }
