"""The monthly report's call back figures: what became of each direction's call back
requests, how long callers waited in working hours, counted in SQL on SQLite and PostgreSQL."""

import statistics
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text, update

from app.callbacks.models import CallbackRequest
from app.core.clock import FixedClock
from app.core.months import Month
from app.reports import callbacks as report_callbacks
from app.reports.exports import CALLBACK_HEADINGS
from app.reports.models import ReportPublication
from tests.conftest import START, Key
from tests.helpers import failed_transfer, statements_sent

NOV = "2026-11"
HOUR = 3600


async def _request(client: httpx.AsyncClient, cqc: Key, clock: FixedClock, at: datetime) -> str:
    clock.set(at)
    return str((await failed_transfer(client, cqc, clock.now()))["callback_request_id"])


async def _post(
    client: httpx.AsyncClient, key: Key, callback_id: str, action: str, body: Any = None
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/callbacks/{callback_id}/{action}", json=body, headers=key.headers
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def record_november(
    client: httpx.AsyncClient, clock: FixedClock, cqc: Key, lgsco: Key
) -> None:
    """Five CQC requests to LGSCO, made Tuesday 10 November at 10:00 (LGSCO opens 10:00 to
    16:00 on weekdays; first attempt due within 4 working hours, closing within 16):

    - A: no answer at 11:00 (1 working hour), reached at 14:00 (closed after 4 hours);
    - B: first attempted Wednesday at 11:00 (7 working hours: late), then wrong number;
    - C: withdrawn by CQC at 12:00 (2 working hours);
    - D: returned by LGSCO at 13:00 (3 working hours), never attempted;
    - E: never touched: open, and overdue, at the month's end.
    """
    a, b, c, d, _e = [await _request(client, cqc, clock, START) for _ in range(5)]
    clock.set(START + timedelta(hours=1))
    await _post(client, lgsco, a, "attempts", {"result": "no_answer"})
    clock.set(START + timedelta(hours=2))
    await _post(client, cqc, c, "withdraw")
    clock.set(START + timedelta(hours=3))
    await _post(client, lgsco, d, "return", {"reason": "duplicate"})
    clock.set(START + timedelta(hours=4))
    await _post(client, lgsco, a, "attempts", {"result": "reached"})
    clock.set(START + timedelta(days=1, hours=1))
    await _post(client, lgsco, b, "attempts", {"result": "busy"})
    clock.set(START + timedelta(days=1, hours=2))
    await _post(client, lgsco, b, "attempts", {"result": "wrong_number"})


def _callbacks(report: dict[str, Any], from_org: str = "cqc", to_org: str = "lgsco") -> Any:
    [direction] = [
        d for d in report["directions"] if (d["from_org"], d["to_org"]) == (from_org, to_org)
    ]
    return direction["callbacks"]


async def _report(client: httpx.AsyncClient, leader: Key, month: str = NOV) -> dict[str, Any]:
    response = await client.get(f"/v1/reports/contact-volumes/{month}", headers=leader.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_the_months_call_back_figures(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:
    await record_november(client, clock, cqc_agent, lgsco_agent)
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    figures = _callbacks(await _report(client, cqc_leader))
    assert figures["this_month"] == {
        "requests_made": 5,
        "closed_reached": 1,
        "closed_unreachable": 1,
        "closed_withdrawn": 1,
        "closed_returned": 1,
        "open_at_month_end": 1,
        "overdue_at_month_end": 1,
        "first_attempts": 2,
        # 1 and 7 working hours: percentile_cont's interpolation.
        "first_attempt_hours_median": 4.0,
        "first_attempt_hours_p90": 6.4,
        # Closed after 4 (A), 8 (B: Wednesday 12:00), 2 (C) and 3 (D) working hours.
        "close_hours_median": 3.5,
        "close_hours_p90": 6.8,
        "first_attempts_within_target": 1,
        "first_attempts_within_target_percent": 50.0,
    }
    assert figures["previous_month"]["requests_made"] == 0
    assert figures["previous_month"]["first_attempt_hours_median"] is None
    # LGSCO's team leaders read the same figures.
    other = await client.get(f"/v1/reports/contact-volumes/{NOV}", headers=cqc_leader.headers)
    assert _callbacks(other.json()) == figures


async def test_open_and_overdue_are_as_they_stood_at_the_months_end(
    client: httpx.AsyncClient, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:
    """Made on 30 November at 15:00, first attempted on 1 December: open at November's end
    but not yet overdue then (due 1 December); December's figures see it closed."""
    late = await _request(client, cqc_agent, clock, datetime(2026, 11, 30, 15, 0, tzinfo=UTC))
    clock.set(datetime(2026, 12, 1, 11, 0, tzinfo=UTC))
    await _post(client, lgsco_agent, late, "attempts", {"result": "reached"})
    clock.set(datetime(2027, 1, 4, 9, 0, tzinfo=UTC))
    november = _callbacks(await _report(client, cqc_leader))["this_month"]
    assert november["open_at_month_end"] == 1 and november["overdue_at_month_end"] == 0
    december = _callbacks(await _report(client, cqc_leader, "2026-12"))["this_month"]
    assert december["requests_made"] == 0 and december["open_at_month_end"] == 0
    assert december["closed_reached"] == 1 and december["first_attempts"] == 1
    # 15:00-16:00 on Monday, 10:00-11:00 on Tuesday: 2 working hours, within the 4.
    assert december["first_attempt_hours_median"] == 2.0
    assert december["first_attempts_within_target_percent"] == 100.0


async def test_the_figures_are_counted_in_sql(
    app,
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
) -> None:
    await record_november(client, clock, cqc_agent, lgsco_agent)
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    with statements_sent(app) as statements:
        await _report(client, cqc_leader)
    reading = [s for s in statements if "from callback_requests" in s]
    assert reading and all("group by" in s for s in reading), reading
    assert not any("caller_details" in s for s in statements)


async def test_a_purge_of_callers_details_changes_no_figure(
    app,
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
    settings,
) -> None:
    from app.audit.service import SYSTEM
    from app.housekeeping.retention import purge_personal_data
    from tests.outbox_support import worker

    await record_november(client, clock, cqc_agent, lgsco_agent)
    assert await worker(app, settings).drain() == {"sent": 5}
    clock.set(datetime(2027, 1, 20, 9, 0, tzinfo=UTC))
    before = await _report(client, cqc_leader)
    purged = await purge_personal_data(
        app.state.sessionmaker, settings, now=clock.now(), actor=SYSTEM
    )
    assert purged == 4  # closed more than 30 days ago; E is still open and keeps its details
    after = await _report(client, cqc_leader)
    assert after["directions"] == before["directions"] and after["totals"] == before["totals"]


async def test_a_version_published_before_call_back_figures_still_loads(
    app,
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
) -> None:
    await record_november(client, clock, cqc_agent, lgsco_agent)
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    published = await client.post(
        f"/v1/reports/contact-volumes/{NOV}/publish",
        json={"fluctuation_note": "First month with call backs."},
        headers=cqc_leader.headers,
    )
    assert published.status_code == 201, published.text
    frozen = _callbacks(await _report(client, cqc_leader))
    assert frozen["this_month"]["requests_made"] == 5

    # A version frozen before the report counted call backs has no "callbacks" at all.
    async with app.state.sessionmaker() as session:
        row = (await session.scalars(select(ReportPublication))).one()
        figures = dict(row.figures)
        figures["directions"] = [
            {k: v for k, v in d.items() if k != "callbacks"} for d in figures["directions"]
        ]
        row.figures = figures
        await session.commit()
    old = await _report(client, cqc_leader)
    assert old["figures_source"] == "published"
    assert _callbacks(old) is None
    # Compared on the figures it has: nothing recorded since, so nothing differs.
    assert old["live_figures_differ"] is False
    for extension in ("csv", "xlsx"):
        download = await client.get(
            f"/v1/reports/contact-volumes/{NOV}?format={extension}", headers=cqc_leader.headers
        )
        assert download.status_code == 200, download.text


async def test_csv_and_xlsx_carry_the_call_back_figures(
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    cqc_leader: Key,
) -> None:
    import csv
    import io

    from openpyxl import load_workbook

    await record_november(client, clock, cqc_agent, lgsco_agent)
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    response = await client.get(
        f"/v1/reports/contact-volumes/{NOV}?format=csv", headers=cqc_leader.headers
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    median = next(
        r
        for r in rows
        if r["measure"] == "callbacks.first_attempt_hours_median"
        and r["from_org"] == "cqc"
        and r["to_org"] == "lgsco"
    )
    assert median["this_month"] == "4.0" and median["previous_month"] == ""
    assert median["measure_label"] == "Working hours to the first attempt: median"

    response = await client.get(
        f"/v1/reports/contact-volumes/{NOV}?format=xlsx", headers=cqc_leader.headers
    )
    book = load_workbook(io.BytesIO(response.content))
    sheet = book["Report"]
    rows = [row for row in sheet.iter_rows(values_only=True)]
    headings = next(i for i, row in enumerate(rows) if row[:3] == tuple(CALLBACK_HEADINGS))
    start = next(i for i, row in enumerate(rows) if i > headings and row[0] == "CQC to LGSCO")
    end = next(i for i, row in enumerate(rows) if i > start and not any(row))
    labels = {row[0]: row[1:3] for row in rows[start:end]}
    assert labels["Closed: caller reached"] == (1, 0)
    assert labels["Working hours to the first attempt: 90th percentile"] == (6.4, None)
    assert labels["First attempts within their target (%)"] == (0.5, None)


# --- the SQL, on each database ------------------------------------------------------------


async def _seed_times(app, values: list[float]) -> None:  # type: ignore[no-untyped-def]
    """Stamp the stored working seconds of the requests made (oldest first) with `values`."""
    async with app.state.sessionmaker() as session:
        ids = list(
            await session.scalars(
                CallbackRequest.__table__.select()
                .with_only_columns(CallbackRequest.id)
                .order_by(CallbackRequest.requested_at, CallbackRequest.id)
            )
        )
        for callback_id, value in zip(ids, values, strict=True):
            await session.execute(
                update(CallbackRequest)
                .where(CallbackRequest.id == callback_id)
                .values(
                    first_attempt_at=START + timedelta(hours=1), first_attempt_working_seconds=value
                )
            )
        await session.commit()


@pytest.mark.parametrize("values", [[5.0], [1.0, 2.0], [7.0, 1.0, 3.0, 10.0, 4.0, 4.0, 8.5]])
async def test_the_percentiles_agree_on_each_database(
    app,
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    is_postgres: bool,
    values: list[float],
) -> None:
    """The window-function percentiles SQLite uses give percentile_cont's numbers: against
    Python's inclusive quantiles everywhere, and against percentile_cont on PostgreSQL."""
    for _ in values:
        await _request(client, cqc_agent, clock, START)
    await _seed_times(app, values)
    month = Month(2026, 11)
    boundaries = report_callbacks.boundaries_of([month.previous(), month])
    column = CallbackRequest.first_attempt_working_seconds
    moment = CallbackRequest.first_attempt_at
    expected = {
        "median": statistics.median(values),
        "p90": values[0]
        if len(values) == 1
        else statistics.quantiles(values, n=10, method="inclusive")[-1],
    }
    statements = [report_callbacks.percentiles_by_window(column, moment, boundaries)]
    if is_postgres:
        statements.append(
            report_callbacks.times_statement("postgresql", column, moment, boundaries)
        )
    async with app.state.sessionmaker() as session:
        for statement in statements:
            [row] = (await session.execute(statement)).all()
            assert row.bucket == 1
            assert row.median == pytest.approx(expected["median"])
            assert row.p90 == pytest.approx(expected["p90"])


async def test_the_statements_can_use_the_indexes(app, is_postgres: bool) -> None:
    if not is_postgres:
        pytest.skip("index plans are checked on PostgreSQL")
    month = Month(2026, 10)
    boundaries = report_callbacks.boundaries_of([month.previous(), month])
    statements = {
        "ix_callback_requests_requested_at": report_callbacks.made_statement(boundaries),
        "ix_callback_requests_closed_at": report_callbacks.closed_statement(boundaries),
        "ix_callback_requests_first_attempt_at": report_callbacks.first_attempt_statement(
            boundaries
        ),
    }
    async with app.state.engine.connect() as connection:
        await connection.execute(text("SET enable_seqscan = off"))
        for index, statement in statements.items():
            compiled = statement.compile(
                app.state.engine.sync_engine, compile_kwargs={"literal_binds": True}
            )
            plan = "\n".join(
                row[0] for row in await connection.execute(text(f"EXPLAIN {compiled}"))
            )
            assert index in plan, plan


# --- the page ---------------------------------------------------------------------------


async def test_the_report_page_shows_the_call_backs_and_their_times_chart(
    client: httpx.AsyncClient,
    clock: FixedClock,
    cqc_agent: Key,
    lgsco_agent: Key,
    lgsco_leader: Key,
) -> None:
    from tests.test_web_reports import sign_in

    await record_november(client, clock, cqc_agent, lgsco_agent)
    clock.set(datetime(2026, 12, 2, 9, 0, tzinfo=UTC))
    await sign_in(client, lgsco_leader)
    page = await client.get(f"/reports/{NOV}")
    assert page.status_code == 200
    html = page.text
    assert "Call backs by direction" in html
    table = html[html.index('id="callbacks-cqc-lgsco"') :]
    table = table[: table.index("</table>")]
    median = table[table.index('data-measure="first_attempt_hours_median"') :]
    assert '<td class="numeric">4.0</td>' in median[: median.index("</tr>")]
    share = table[table.index('data-measure="first_attempts_within_target_percent"') :]
    assert '<td class="numeric">50.0%</td>' in share[: share.index("</tr>")]
    # The chart of time to the first attempt, with its table alternative.
    assert 'id="hours-cqc-lgsco-title"' in html
    assert "Working hours to the first attempt for CQC to LGSCO as a table" in html
    # No request has been open for 90 days: no line about stale ones.
    assert 'id="stale-callbacks"' not in html

    clock.set(START + timedelta(days=91))
    later = await client.get(f"/reports/{NOV}")
    assert 'id="stale-callbacks"' in later.text
    assert "1 call back request involving your body has been open for more than 90 days" in (
        later.text
    )
