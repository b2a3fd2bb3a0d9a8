"""Calendar months in Europe/London, as half-open UTC ranges for indexed queries."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, Field
from pydantic_core import PydanticCustomError

LONDON = ZoneInfo("Europe/London")
# Years 2000-2999: every month the service can report on, and none whose neighbour month falls
# outside what a datetime holds (0000-01, 9999-12).
MONTH_PATTERN = r"^(2[0-9]{3})-(0[1-9]|1[0-2])$"
_MONTH = re.compile(MONTH_PATTERN)


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> "Month":
        match = _MONTH.fullmatch(text)
        if not match:
            raise ValueError(f"not a month: {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def containing(cls, moment: datetime) -> "Month":
        local = moment.astimezone(LONDON)
        return cls(local.year, local.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> "Month":
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> "Month":
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def utc_range(self) -> tuple[datetime, datetime]:
        """[start, end) of the month in London time, expressed in UTC."""
        nxt = self.next()
        start = datetime(self.year, self.month, 1, tzinfo=LONDON).astimezone(UTC)
        end = datetime(nxt.year, nxt.month, 1, tzinfo=LONDON).astimezone(UTC)
        return start, end


def _month(value: str) -> str:
    if not _MONTH.fullmatch(value):
        raise PydanticCustomError(
            "invalid_month", "must be a month written YYYY-MM, between 2000-01 and 2999-12"
        )
    return value


MonthText = Annotated[
    str,
    # The document states the rule; `_month` enforces it with its own code.
    Field(
        examples=["2026-11"],
        json_schema_extra={"minLength": 7, "maxLength": 7, "pattern": MONTH_PATTERN},
    ),
    AfterValidator(_month),
]
