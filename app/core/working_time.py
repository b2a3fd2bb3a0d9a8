"""Working time: a body's opening hours, and time counted only while it is open.

Opening hours are Europe/London wall-clock times on named weekdays; England and Wales bank
holidays (`app.core.workdays`) are closed. Instants go in and come out as aware UTC datetimes.
A working hour is an hour that really passes while the body is open, so a day on which the
clocks change counts its true length.

Written here rather than taken from a library: `businesstimedelta` (last release 2019) needs
pytz zones (it calls `tz.localize`, which `zoneinfo` has not) and drops the sub-second part
of a difference; pandas' `CustomBusinessHour` adds whole hours only and cannot count the time
between two instants; `workalendar` and `bizdays` count whole days; `business-duration` is
naive-datetime only and cannot add. The walk below is two short loops over open periods.
"""

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from app.core.months import LONDON
from app.core.workdays import is_bank_holiday

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)


def _clock_text(value: time) -> str:
    return value.strftime("%H:%M" if not value.second else "%H:%M:%S")


# A wall-clock time of day with no offset, written "08:30" (JSON Schema's "time" format would
# demand an offset, which a time on the wall in London does not have).
ClockTime = Annotated[
    time,
    PlainSerializer(_clock_text, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
            "examples": ["08:30"],
        }
    ),
]


class OpeningHours(BaseModel):
    """When a body answers its telephone: the same hours on each named weekday."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: tuple[Weekday, ...] = Field(min_length=1)
    opens: ClockTime
    closes: ClockTime

    @field_validator("days", mode="before")
    @classmethod
    def _known_weekdays(cls, days: Any) -> Any:
        if isinstance(days, list | tuple):
            for day in days:
                if day not in WEEKDAYS:
                    raise ValueError(f"unknown weekday {day!r}: use one of {', '.join(WEEKDAYS)}")
            if len(set(days)) != len(days):
                raise ValueError("a weekday is named twice")
        return days

    @field_validator("opens", "closes")
    @classmethod
    def _wall_clock(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("opening times are Europe/London clock times, without an offset")
        if value.microsecond:
            raise ValueError("opening times are to the minute (or second)")
        return value

    @model_validator(mode="after")
    def _closes_after_it_opens(self) -> "OpeningHours":
        if self.closes <= self.opens:
            raise ValueError(
                f"closes at {self.closes:%H:%M}, not after it opens at {self.opens:%H:%M}"
            )
        return self

    def is_open_on(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.days and not is_bank_holiday(day)

    def periods(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open periods, in UTC, from `after` on; one already under way starts at `after`."""
        day = after.astimezone(LONDON).date()
        while True:
            if self.is_open_on(day):
                opens = datetime.combine(day, self.opens, tzinfo=LONDON).astimezone(UTC)
                closes = datetime.combine(day, self.closes, tzinfo=LONDON).astimezone(UTC)
                if closes > after:
                    yield max(opens, after), closes
            day += timedelta(days=1)


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return moment.astimezone(UTC)


def due_at(start: datetime, working_hours: float, opening_hours: OpeningHours) -> datetime:
    """The first instant at which `working_hours` of open time have passed since `start`.

    Time while the body is closed does not count. Being the first such instant, a target that
    runs out exactly at closing time is due at closing time, not at the next opening; and
    0 hours is `start` itself.
    """
    start = _utc(start, "start")
    if not math.isfinite(working_hours) or working_hours < 0:
        raise ValueError("working_hours must be a finite number of hours, 0 or more")
    left = timedelta(hours=working_hours)
    if not left:
        return start
    for opens, closes in opening_hours.periods(start):
        if left <= closes - opens:
            return opens + left
        left -= closes - opens
    raise AssertionError("opening hours never end")  # pragma: no cover


def working_seconds_between(a: datetime, b: datetime, opening_hours: OpeningHours) -> float:
    """Seconds of open time from `a` to `b` (b not before a): the inverse of `due_at`."""
    a, b = _utc(a, "a"), _utc(b, "b")
    if b < a:
        raise ValueError("b is before a")
    total = timedelta()
    for opens, closes in opening_hours.periods(a):
        if opens >= b:
            break
        total += min(closes, b) - opens
    return total.total_seconds()
