"""Working days in England and Wales, and the report's due date (the 10th working day).

Bank holidays come from the `holidays` package's bundled rules (England subdivision, whose
bank holidays are also Wales's): nothing is fetched over the network.
"""

from datetime import date, timedelta
from functools import lru_cache

import holidays

from app.core.months import Month

# "within 10 working days of the start of the month" (ISA Appendix 2, s.6.1).
DUE_WORKING_DAY = 10


@lru_cache(maxsize=64)
def bank_holidays(year: int) -> frozenset[date]:
    """England and Wales bank holidays of one year, substitute days included."""
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in bank_holidays(day.year)


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


def due_date(month: Month) -> date:
    """When the report of `month` is due: the 10th working day of the following month."""
    return nth_working_day(month.next().first_day(), DUE_WORKING_DAY)
