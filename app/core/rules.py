"""Timestamp rules shared by every record: aware, not in the future, in order."""

from datetime import datetime, timedelta

from app.core.errors import Unprocessable


def not_in_future(
    value: datetime, now: datetime, skew_seconds: int, field: str, code: str = "timestamp_in_future"
) -> datetime:
    if value > now + timedelta(seconds=skew_seconds):
        raise Unprocessable(code, f"'{field}' is in the future.", extra={"field": field})
    return value


def not_before(value: datetime, earlier: datetime, field: str, earlier_field: str) -> datetime:
    if value < earlier:
        raise Unprocessable(
            "timestamp_out_of_order",
            f"'{field}' is before '{earlier_field}'.",
            extra={"field": field},
        )
    return value
