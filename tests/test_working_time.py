"""Call back targets are counted in the receiving body's working time: its opening hours in
Europe/London, weekends and England and Wales bank holidays closed. Expected instants are
worked out by hand from the calendar (CQC opens 08:30-17:30, LGSCO 10:00-16:00, Monday to
Friday)."""

from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app.core.months import LONDON
from app.core.working_time import WEEKDAYS, OpeningHours, due_at, working_seconds_between
from app.protocol.routes import DEFAULT_TABLE, RouteTableError, load_table
from tests.conftest import Key

pytestmark = pytest.mark.database_independent

TABLE = load_table()
CQC = TABLE.bodies["cqc"].opening_hours
LGSCO = TABLE.bodies["lgsco"].opening_hours
HOUR = 3600.0


def london(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A Europe/London wall-clock time, as the aware UTC instant the functions take."""
    return datetime(year, month, day, hour, minute, tzinfo=LONDON).astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# The route table's data.


def test_the_bodies_published_hours_and_the_assumed_targets_are_the_defaults() -> None:
    weekdays = ("monday", "tuesday", "wednesday", "thursday", "friday")
    assert (CQC.days, CQC.opens, CQC.closes) == (weekdays, time(8, 30), time(17, 30))
    assert (LGSCO.days, LGSCO.opens, LGSCO.closes) == (weekdays, time(10), time(16))
    for route in TABLE:
        assert route.callback_first_attempt_within == 4
        assert route.callback_close_within == 16
        assert route.callback_max_attempts == 3


def test_the_file_says_its_targets_are_assumptions() -> None:
    text = DEFAULT_TABLE.read_text(encoding="utf-8")
    assert "Appendix 2 gives no figures" in text
    assert "assumptions" in text


THIRD_BODY = """
[bodies.phso]
name = "Parliamentary and Health Service Ombudsman"
short_name = "PHSO"
switchboard = "0345 015 4033"
receiving_team = "Customer Help Team"
sending_team = "PHSO Customer Help Team"
reference_label = "PHSO Reference"
callback_mailbox = "callbacks@phso.example"
feedback_mailbox = "feedback@phso.example"
signature = "Customer Help Team"
{hours}

[[routes]]
from = "cqc"
to = "phso"
wait_threshold_seconds = 45
sender_reference = "required"
permission_to_share = "always"
{targets}
"""

HOURS = """
[bodies.phso.opening_hours]
days = {days}
opens = {opens}
closes = {closes}
"""


def third_body(
    tmp_path: Path,
    days: str = '["monday", "saturday"]',
    opens: str = '"09:00"',
    closes: str = '"17:00"',
    targets: str = "",
    hours: str | None = None,
) -> Path:
    if hours is None:
        hours = HOURS.format(days=days, opens=opens, closes=closes)
    path = tmp_path / "routes.toml"
    path.write_text(THIRD_BODY.format(hours=hours, targets=targets), encoding="utf-8")
    return path


def test_a_routes_file_sets_its_own_hours_and_targets_or_takes_the_defaults(
    tmp_path: Path,
) -> None:
    # TOML's own time values work as well as quoted ones.
    table = load_table(third_body(tmp_path, opens="07:45:00", closes='"19:15"'))
    assert table.bodies["phso"].opening_hours == OpeningHours(
        days=("monday", "saturday"), opens=time(7, 45), closes=time(19, 15)
    )
    route = table.route("cqc", "phso")
    assert route is not None
    assert (route.callback_first_attempt_within, route.callback_close_within) == (4, 16)
    assert route.callback_max_attempts == 3

    targets = (
        "callback_first_attempt_within = 1.5\ncallback_close_within = 8\ncallback_max_attempts = 5"
    )
    route = load_table(third_body(tmp_path, targets=targets)).route("cqc", "phso")
    assert route is not None
    assert (route.callback_first_attempt_within, route.callback_close_within) == (1.5, 8)
    assert route.callback_max_attempts == 5


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"opens": '"25:00"'}, "hour value is outside expected range"),
        ({"closes": '"17:60"'}, "minute value is outside expected range"),
        ({"opens": '"half past eight"'}, "valid time format"),
        ({"opens": '"17:00"', "closes": '"09:00"'}, "closes at 09:00, not after it opens at 17:00"),
        ({"opens": '"09:00"', "closes": '"09:00"'}, "closes at 09:00, not after it opens at 09:00"),
        ({"days": '["monday", "funday"]'}, "unknown weekday 'funday'"),
        ({"days": '["Mon"]'}, "unknown weekday 'Mon'"),
        ({"days": '["monday", "monday"]'}, "a weekday is named twice"),
        ({"days": "[]"}, "at least 1 item"),
        ({"opens": '"08:30+01:00"'}, "Europe/London clock times, without an offset"),
        ({"opens": '"08:30:00.5"'}, "to the minute"),
        ({"hours": ""}, "opening_hours\n  Field required"),
        ({"targets": "callback_first_attempt_within = 0"}, "greater than 0"),
        ({"targets": "callback_close_within = -1"}, "greater than 0"),
        ({"targets": 'callback_close_within = "soon"'}, "valid number"),
        (
            {"targets": "callback_first_attempt_within = 8\ncallback_close_within = 4"},
            "callback_close_within is shorter than callback_first_attempt_within",
        ),
        ({"targets": "callback_max_attempts = 0"}, "greater than or equal to 1"),
        ({"targets": "callback_max_attempts = 2.5"}, "valid integer"),
        ({"targets": "callback_attempts = 3"}, "Extra inputs are not permitted"),
    ],
)
def test_a_routes_file_with_bad_hours_or_targets_is_refused_on_load(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    with pytest.raises(RouteTableError, match=message):
        load_table(third_body(tmp_path, **change))


async def test_the_routes_api_lists_opening_hours_and_call_back_targets(
    client: httpx.AsyncClient, cqc_agent: Key
) -> None:
    table = (await client.get("/v1/routes", headers=cqc_agent.headers)).json()
    bodies = {body["id"]: body for body in table["bodies"]}
    assert bodies["lgsco"]["opening_hours"] == {
        "days": ["monday", "tuesday", "wednesday", "thursday", "friday"],
        "opens": "10:00",
        "closes": "16:00",
    }
    assert bodies["cqc"]["opening_hours"]["opens"] == "08:30"
    for route in table["routes"]:
        assert route["callback_first_attempt_within"] == 4
        assert route["callback_close_within"] == 16
        assert route["callback_max_attempts"] == 3


# due_at and working_seconds_between.


def test_a_request_made_after_closing_time_is_counted_from_the_next_opening() -> None:
    # Tuesday 10 November 2026, 18:00: CQC closed at 17:30; it opens at 08:30 on Wednesday.
    assert due_at(london(2026, 11, 10, 18), 4, CQC) == london(2026, 11, 11, 12, 30)
    # And one made on Wednesday before it opens is due at the same time.
    assert due_at(london(2026, 11, 11, 7), 4, CQC) == london(2026, 11, 11, 12, 30)


def test_a_target_that_runs_out_at_closing_time_is_due_at_closing_time() -> None:
    assert due_at(london(2026, 11, 10, 13, 30), 4, CQC) == london(2026, 11, 10, 17, 30)
    assert due_at(london(2026, 11, 10, 13, 31), 4, CQC) == london(2026, 11, 11, 8, 31)


def test_the_weekend_does_not_count() -> None:
    # Friday 13 November 2026, 16:00: 1.5 hours on Friday, 2.5 on Monday.
    assert due_at(london(2026, 11, 13, 16), 4, CQC) == london(2026, 11, 16, 11)
    # Made on the Saturday: the whole target falls on Monday.
    assert due_at(london(2026, 11, 14, 11), 4, CQC) == london(2026, 11, 16, 12, 30)
    assert working_seconds_between(london(2026, 11, 14, 9), london(2026, 11, 15, 20), CQC) == 0


def test_christmas_2026_and_its_substitute_boxing_day_are_closed() -> None:
    # Christmas Day is Friday 25 December; Boxing Day, a Saturday, is taken on Monday 28.
    # A CQC request to LGSCO on Thursday 24 December at 15:00: 1 hour on Thursday, then
    # 6 hours a day from Tuesday 29.
    route = TABLE.route("cqc", "lgsco")
    assert route is not None
    due = TABLE.callback_due(route, london(2026, 12, 24, 15))
    assert due.first_attempt_due_at == london(2026, 12, 29, 13)
    assert due.close_due_at == london(2026, 12, 31, 13)
    assert working_seconds_between(london(2026, 12, 24, 15), due.close_due_at, LGSCO) == 16 * HOUR


def test_the_spring_bank_holiday_weekend_is_closed() -> None:
    # Friday 28 May 2027, 17:00: half an hour before CQC closes; Monday 31 May is the Spring
    # bank holiday, so the other 3.5 hours fall on Tuesday 1 June.
    assert due_at(london(2027, 5, 28, 17), 4, CQC) == london(2027, 6, 1, 12)
    assert due_at(london(2027, 5, 28, 17), 4, CQC) == utc(2027, 6, 1, 11)


def test_easter_2027_when_the_clocks_go_forward_on_easter_sunday() -> None:
    # Thursday 25 March 2027, 15:00 GMT: an hour before LGSCO closes. Good Friday, the
    # weekend (BST from Sunday 28) and Easter Monday are closed; Tuesday opens at 10:00 BST.
    start = utc(2027, 3, 25, 15)
    assert due_at(start, 4, LGSCO) == london(2027, 3, 30, 13)
    assert due_at(start, 4, LGSCO) == utc(2027, 3, 30, 12)


def test_a_request_on_the_friday_before_the_clocks_go_forward_is_due_on_monday() -> None:
    # Friday 27 March 2026, 15:30 GMT; the clocks go forward on Sunday 29 March. Two hours on
    # Friday, two from 08:30 BST on Monday: 10:30 BST, which is 09:30 UTC.
    start = utc(2026, 3, 27, 15, 30)
    assert due_at(start, 4, CQC) == utc(2026, 3, 30, 9, 30)
    assert working_seconds_between(start, utc(2026, 3, 30, 9, 30), CQC) == 4 * HOUR


def test_a_request_on_the_friday_before_the_clocks_go_back_is_due_on_monday() -> None:
    # Friday 23 October 2026, 15:30 BST (14:30 UTC); the clocks go back on Sunday 25
    # October. Two hours on Friday, two from 08:30 GMT on Monday: 10:30 GMT.
    start = london(2026, 10, 23, 15, 30)
    assert start == utc(2026, 10, 23, 14, 30)
    assert due_at(start, 4, CQC) == utc(2026, 10, 26, 10, 30)
    assert working_seconds_between(start, utc(2026, 10, 26, 10, 30), CQC) == 4 * HOUR


def test_hours_counted_across_the_change_are_hours_that_really_pass() -> None:
    # A body open on Sundays from 00:30 to 03:30 by the clock on the wall.
    night = OpeningHours(days=("sunday",), opens=time(0, 30), closes=time(3, 30))
    # 29 March 2026: 00:30 GMT to 03:30 BST is two hours.
    spring = (utc(2026, 3, 28, 12), utc(2026, 3, 30))
    assert working_seconds_between(*spring, night) == 2 * HOUR
    assert due_at(spring[0], 2, night) == london(2026, 3, 29, 3, 30)
    assert due_at(spring[0], 2.5, night) == london(2026, 4, 5, 1)
    # 25 October 2026: 00:30 BST to 03:30 GMT is four hours.
    autumn = (utc(2026, 10, 24, 12), utc(2026, 10, 26))
    assert working_seconds_between(*autumn, night) == 4 * HOUR
    assert due_at(autumn[0], 4, night) == utc(2026, 10, 25, 3, 30)


def test_zero_hours_is_due_at_once_even_when_closed() -> None:
    saturday = london(2026, 11, 14, 11)
    assert due_at(saturday, 0, CQC) == saturday
    assert working_seconds_between(saturday, saturday, CQC) == 0


def test_fractional_hours() -> None:
    assert due_at(london(2026, 11, 10, 17, 15), 0.25, CQC) == london(2026, 11, 10, 17, 30)
    # Friday 17:00: half an hour on Friday, an hour on Monday.
    assert due_at(london(2026, 11, 13, 17), 1.5, CQC) == london(2026, 11, 16, 9, 30)
    assert due_at(london(2026, 11, 11, 16), 2.75, CQC) == london(2026, 11, 12, 9, 45)
    due = due_at(london(2026, 11, 11, 10), 1 / 3600, LGSCO)
    assert due == london(2026, 11, 11, 10) + timedelta(seconds=1)


def test_working_seconds_between_counts_only_open_time() -> None:
    # Friday 16:00 to Monday 10:00 at CQC: 1.5 hours on each side of the weekend.
    assert working_seconds_between(london(2026, 11, 13, 16), london(2026, 11, 16, 10), CQC) == (
        3 * HOUR
    )
    # A whole working week at LGSCO, Monday 00:00 to the next Monday 00:00.
    week = (london(2026, 11, 9, 0), london(2026, 11, 16, 0))
    assert working_seconds_between(*week, LGSCO) == 30 * HOUR
    # Sub-second precision survives.
    start = london(2026, 11, 11, 11)
    assert working_seconds_between(start, start + timedelta(microseconds=1500), LGSCO) == 0.0015


def test_times_and_hours_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        due_at(datetime(2026, 11, 10, 9), 4, CQC)
    with pytest.raises(ValueError, match="aware"):
        working_seconds_between(datetime(2026, 11, 10, 9), london(2026, 11, 11, 9), CQC)
    with pytest.raises(ValueError, match="0 or more"):
        due_at(london(2026, 11, 10, 9), -1, CQC)
    with pytest.raises(ValueError, match="finite"):
        due_at(london(2026, 11, 10, 9), float("inf"), CQC)
    with pytest.raises(ValueError, match="before"):
        working_seconds_between(london(2026, 11, 11, 9), london(2026, 11, 10, 9), CQC)


def test_an_instant_given_in_another_offset_is_the_same_moment_and_the_answer_is_utc() -> None:
    new_york = timezone(timedelta(hours=-5))
    due = due_at(datetime(2026, 11, 10, 13, tzinfo=new_york), 4, CQC)  # 18:00 in London
    assert due == london(2026, 11, 11, 12, 30)
    assert due.tzinfo is UTC


# The inverse, over any opening hours.

minutes_of_day = st.integers(min_value=0, max_value=24 * 60 - 2)


@st.composite
def opening_hours(draw: st.DrawFn) -> OpeningHours:
    if draw(st.booleans()):
        return draw(st.sampled_from([CQC, LGSCO]))
    days = draw(st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True))
    opens = draw(minutes_of_day)
    closes = draw(st.integers(min_value=opens + 1, max_value=24 * 60 - 1))
    return OpeningHours(
        days=tuple(days),
        opens=time(opens // 60, opens % 60),
        closes=time(closes // 60, closes % 60),
    )


# Whole seconds from 2026 to 2028, so that seconds -> hours -> seconds is exact.
instants = st.integers(
    min_value=int(utc(2026, 1, 1, 0).timestamp()), max_value=int(utc(2028, 12, 31, 0).timestamp())
).map(lambda seconds: datetime.fromtimestamp(seconds, UTC))


@hypothesis_settings(max_examples=300, deadline=None)
@given(start=instants, seconds=st.integers(min_value=0, max_value=80 * 3600), hours=opening_hours())
def test_working_seconds_between_undoes_due_at(
    start: datetime, seconds: int, hours: OpeningHours
) -> None:
    due = due_at(start, seconds / 3600, hours)
    assert due >= start
    assert working_seconds_between(start, due, hours) == seconds
    if seconds:
        # The first instant: a second earlier, the target had not yet run out.
        assert working_seconds_between(start, due - timedelta(seconds=1), hours) < seconds


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    a=instants,
    span=st.integers(min_value=0, max_value=21 * 86400),
    split=st.floats(min_value=0, max_value=1),
    hours=opening_hours(),
)
def test_due_at_undoes_working_seconds_between(
    a: datetime, span: int, split: float, hours: OpeningHours
) -> None:
    b = a + timedelta(seconds=span)
    seconds = working_seconds_between(a, b, hours)
    assert 0 <= seconds <= span
    due = due_at(a, seconds / 3600, hours)
    assert a <= due <= b
    assert working_seconds_between(a, due, hours) == seconds
    # When the body was open in the second before b, b is the first instant with that count.
    if b - a >= timedelta(seconds=1) and working_seconds_between(
        b - timedelta(seconds=1), b, hours
    ):
        assert due == b
    # Open time adds up over any split of the interval.
    c = a + timedelta(seconds=round(span * split))
    assert working_seconds_between(a, c, hours) + working_seconds_between(c, b, hours) == seconds
