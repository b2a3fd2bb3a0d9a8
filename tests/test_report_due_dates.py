"""The report is due on the 10th working day of the following month (weekends and England and
Wales bank holidays excluded). Expected dates worked out by hand from the calendar."""

from datetime import date

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.core.months import Month
from app.reports.workdays import due_date, is_working_day, nth_working_day
from tests.conftest import Key
from tests.helpers import assert_problem

EXPECTED = {
    # 2026: Easter Monday 6 April, May Day 4 May; 1 January 2027 is a Friday bank holiday.
    "2026-01": "2026-02-13",
    "2026-02": "2026-03-13",
    "2026-03": "2026-04-16",
    "2026-04": "2026-05-15",
    "2026-05": "2026-06-12",
    "2026-06": "2026-07-14",
    "2026-07": "2026-08-14",
    "2026-08": "2026-09-14",
    "2026-09": "2026-10-14",
    "2026-10": "2026-11-13",
    "2026-11": "2026-12-14",
    "2026-12": "2027-01-15",
    # 2027: Easter falls in March, May Day 3 May; 1 January 2028 is a Saturday (Monday 3rd off).
    "2027-01": "2027-02-12",
    "2027-02": "2027-03-12",
    "2027-03": "2027-04-14",
    "2027-04": "2027-05-17",
    "2027-05": "2027-06-14",
    "2027-06": "2027-07-14",
    "2027-07": "2027-08-13",
    "2027-08": "2027-09-14",
    "2027-09": "2027-10-14",
    "2027-10": "2027-11-12",
    "2027-11": "2027-12-14",
    "2027-12": "2028-01-17",
    # 2028: Good Friday 14 April and Easter Monday 17 April push April's 10th day to the 18th.
    "2028-01": "2028-02-14",
    "2028-02": "2028-03-14",
    "2028-03": "2028-04-18",
    "2028-04": "2028-05-15",
    "2028-05": "2028-06-14",
    "2028-06": "2028-07-14",
    "2028-07": "2028-08-14",
    "2028-08": "2028-09-14",
    "2028-09": "2028-10-13",
    "2028-10": "2028-11-14",
    "2028-11": "2028-12-14",
    "2028-12": "2029-01-15",
}


@pytest.mark.parametrize(("month", "due"), sorted(EXPECTED.items()))
def test_due_date_is_the_tenth_working_day_of_the_next_month(month: str, due: str) -> None:
    assert due_date(Month.parse(month)) == date.fromisoformat(due)


def test_the_protocols_examples() -> None:
    assert due_date(Month(2026, 10)) == date(2026, 11, 13)
    assert due_date(Month(2026, 12)) == date(2027, 1, 15)


def test_bank_holidays_and_weekends_are_not_working_days() -> None:
    assert not is_working_day(date(2027, 1, 1))  # New Year's Day, a Friday
    assert not is_working_day(date(2026, 12, 28))  # Boxing Day moved off a Saturday
    assert not is_working_day(date(2028, 1, 3))  # New Year's Day moved off a Saturday
    assert not is_working_day(date(2026, 11, 14))  # a Saturday
    assert is_working_day(date(2026, 11, 13))
    # Scotland's 2 January is not a bank holiday in England and Wales.
    assert is_working_day(date(2029, 1, 2))
    assert nth_working_day(date(2027, 1, 1), 1) == date(2027, 1, 4)


async def test_due_dates_endpoint_lists_a_year(client, cqc_agent: Key) -> None:
    response = await client.get("/v1/reports/due-dates?year=2027", headers=cqc_agent.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["year"] == 2027
    assert [(i["month"], i["due_date"]) for i in body["items"]] == [
        (m, d) for m, d in sorted(EXPECTED.items()) if m.startswith("2027")
    ]


async def test_due_dates_endpoint_refuses_a_bad_year(client, cqc_agent: Key) -> None:
    for year in ("1999", "abc"):
        response = await client.get(f"/v1/reports/due-dates?year={year}", headers=cqc_agent.headers)
        assert_problem(response, 422, "validation_error")
    assert_problem(await client.get("/v1/reports/due-dates?year=2027"), 401, "unauthenticated")


def test_cli_prints_the_due_dates_of_a_year() -> None:
    result = CliRunner().invoke(cli, ["report", "due-dates", "--year", "2026"])
    assert result.exit_code == 0, result.output
    assert "2026-10  due 2026-11-13 (Friday)" in result.output
    assert "2026-12  due 2027-01-15 (Friday)" in result.output
    assert len(result.output.strip().splitlines()) == 12


def test_cli_refuses_a_year_out_of_range() -> None:
    result = CliRunner().invoke(cli, ["report", "due-dates", "--year", "1800"])
    assert result.exit_code == 2
