"""The report's due date: the 10th working day of the following month.

The working-day rule itself lives in `app.core.workdays`; its names are re-exported here.
"""

from datetime import date

from app.core.months import Month
from app.core.workdays import bank_holidays, is_working_day, nth_working_day

__all__ = ["DUE_WORKING_DAY", "bank_holidays", "due_date", "is_working_day", "nth_working_day"]

# "within 10 working days of the start of the month" (ISA Appendix 2, s.6.1).
DUE_WORKING_DAY = 10


def due_date(month: Month) -> date:
    """When the report of `month` is due: the 10th working day of the following month."""
    return nth_working_day(month.next().first_day(), DUE_WORKING_DAY)
