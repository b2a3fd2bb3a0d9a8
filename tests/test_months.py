"""UK calendar months."""

from datetime import UTC, datetime

import pytest

from app.core.months import Month


@pytest.mark.parametrize(
    ("moment", "month"),
    [
        (datetime(2026, 5, 31, 23, 30, tzinfo=UTC), "2026-06"),  # BST: already 1 June
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "2026-12"),  # GMT: still 31 December
        (datetime(2026, 10, 31, 23, 59, tzinfo=UTC), "2026-10"),
    ],
)
def test_a_moment_belongs_to_its_uk_month(moment: datetime, month: str) -> None:
    assert str(Month.containing(moment)) == month


def test_month_ranges_follow_uk_time() -> None:
    start, end = Month.parse("2026-06").utc_range()
    assert start == datetime(2026, 5, 31, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
    assert Month.parse("2026-01").previous() == Month(2025, 12)
    assert Month.parse("2026-12").next() == Month(2027, 1)
