"""Working days in England and Wales: weekdays that are not bank holidays.

Bank holidays come from the `holidays` package's bundled rules (England subdivision, whose
bank holidays are also Wales's): nothing is fetched over the network. The report's due date
(`app.reports.workdays`) and the route table's opening hours (`app.core.working_time`) both
count with this one rule.
"""

from datetime import date, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=64)
def bank_holidays(year: int) -> frozenset[date]:
    """England and Wales bank holidays of one year, substitute days included."""
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def is_bank_holiday(day: date) -> bool:
    return day in bank_holidays(day.year)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and not is_bank_holiday(day)


def nth_working_day(start: date, n: int) -> date:
    """The n-th working day counting from `start` itself (n >= 1)."""
    if n < 1:
        raise ValueError("n counts from 1")
    day = start
    seen = 0
    while True:
        if is_working_day(day):
            seen += 1
            if seen == n:
                return day
        day += timedelta(days=1)


def working_days_between(start: date, end: date) -> int:
    """Working days after `start` up to and including `end` (0 when `end` is not after
    `start`): answered the day it came in is 0, the next working day is 1."""
    return sum(
        1 for n in range(1, (end - start).days + 1) if is_working_day(start + timedelta(days=n))
    )
