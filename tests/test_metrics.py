"""/metrics: what a Prometheus scrape of one process shows.

Counters are process-wide and other tests move them too, so each test compares a value before
and after what it does. Several processes are covered by tests/test_multiworker.py."""

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.core import metrics
from app.core.clock import FixedClock
from app.outbox import metrics as outbox_metrics
from tests.conftest import Key
from tests.helpers import failure, to_lgsco

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths


async def scrape(client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_requests_are_counted_by_route_template_and_status(client, cqc_agent: Key) -> None:
    route = "/v1/transfers/{transfer_id}"
    before = await scrape(client)

    for _ in range(3):
        await client.get(
            "/v1/transfers/00000000-0000-4000-8000-000000000000", headers=cqc_agent.headers
        )
    await client.get("/no/such/thing")
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("handoff_http_requests_total", method="GET", route=route, status="404") == 3
    assert delta("handoff_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert delta("handoff_http_request_duration_seconds_count", method="GET", route=route) == 3
    assert (
        delta("handoff_http_request_duration_seconds_bucket", method="GET", route=route, le="+Inf")
        == 3
    )
    assert not any("/no/such/thing" in str(labels) for _, labels in after)


async def test_a_failed_transfer_counts_one_call_back_request_and_one_pending_email(
    client, clock: FixedClock, cqc_agent: Key
) -> None:
    labels = {"from_org": "cqc", "to_org": "lgsco"}
    before = await scrape(client)
    assert value(before, "handoff_outbox_pending_messages") == 0
    assert value(before, "handoff_outbox_oldest_pending_age_seconds") == 0

    started = await client.post(
        "/v1/transfers", json=to_lgsco(clock.now()), headers=cqc_agent.headers
    )
    clock.advance(61)
    failed = await client.post(
        f"/v1/transfers/{started.json()['id']}/failed", json=failure(), headers=cqc_agent.headers
    )
    assert failed.status_code == 200, failed.text
    clock.advance(90)
    after = await scrape(client)

    created = "handoff_callback_requests_created_total"
    assert value(after, created, **labels) - value(before, created, **labels) == 1
    assert value(after, "handoff_outbox_pending_messages") == 1
    assert value(after, "handoff_outbox_oldest_pending_age_seconds") == 90


async def test_the_outbox_gauges_count_only_messages_still_waiting(
    app, client, clock: FixedClock, cqc_agent: Key
) -> None:
    from sqlalchemy import update

    from app.outbox.models import OutboxMessage

    for _ in range(3):
        started = await client.post(
            "/v1/transfers", json=to_lgsco(clock.now()), headers=cqc_agent.headers
        )
        clock.advance(61)
        await client.post(
            f"/v1/transfers/{started.json()['id']}/failed",
            json=failure(),
            headers=cqc_agent.headers,
        )
    async with app.state.sessionmaker() as session:
        rows = (await session.execute(OutboxMessage.__table__.select())).all()
        oldest, middle, newest = sorted(rows, key=lambda row: row.created_at)
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == oldest.id).values(status="sent")
        )
        await session.execute(
            update(OutboxMessage).where(OutboxMessage.id == middle.id).values(status="retrying")
        )
        await session.commit()

    samples = await scrape(client)
    assert value(samples, "handoff_outbox_pending_messages") == 2
    expected_age = (clock.now() - middle.created_at).total_seconds()
    assert value(samples, "handoff_outbox_oldest_pending_age_seconds") == expected_age


async def test_deliveries_and_report_times_are_ready_for_the_outbox_and_the_report(
    client,
) -> None:
    before = await scrape(client)
    for result in outbox_metrics.DELIVERY_RESULTS:
        assert ("handoff_outbox_deliveries_total", frozenset({("result", result)})) in before

    outbox_metrics.record_delivery("sent")
    outbox_metrics.record_delivery("dead")
    with metrics.time_report("contact_volumes"):
        pass
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("handoff_outbox_deliveries_total", result="sent") == 1
    assert delta("handoff_outbox_deliveries_total", result="dead") == 1
    assert delta("handoff_outbox_deliveries_total", result="retry") == 0
    assert delta("handoff_report_generation_seconds_count", report="contact_volumes") == 1
    with pytest.raises(ValueError):
        outbox_metrics.record_delivery("bounced")


async def test_metrics_still_answer_when_the_database_does_not(app, client) -> None:
    from app.core.database import make_engine, make_sessionmaker

    broken = make_engine("sqlite+aiosqlite:////nonexistent/dir/handoff.db")
    app.state.sessionmaker = make_sessionmaker(broken)
    try:
        samples = await scrape(client)
    finally:
        await broken.dispose()
    assert ("handoff_outbox_pending_messages", frozenset()) not in samples
    assert any(name == "handoff_http_requests_total" for name, _ in samples)


async def test_metrics_are_not_part_of_the_api_document(app) -> None:
    assert "/metrics" not in app.openapi()["paths"]


async def test_the_call_back_gauges_count_open_and_overdue_requests_by_receiving_body(
    client, clock: FixedClock, cqc_agent: Key, lgsco_agent: Key
) -> None:
    from datetime import timedelta

    from tests.helpers import failed_transfer

    ids = [
        (await failed_transfer(client, cqc_agent, clock.now()))["callback_request_id"]
        for _ in range(3)
    ]
    closed = await client.post(
        f"/v1/callbacks/{ids[0]}/attempts", json={"result": "reached"}, headers=lgsco_agent.headers
    )
    assert closed.status_code == 200, closed.text
    samples = await scrape(client)
    assert value(samples, "handoff_callback_requests_open", to_org="lgsco") == 2
    assert value(samples, "handoff_callback_requests_overdue", to_org="lgsco") == 0
    attempted = await client.post(
        f"/v1/callbacks/{ids[1]}/attempts", json={"result": "busy"}, headers=lgsco_agent.headers
    )
    assert attempted.status_code == 200, attempted.text

    # Past the first-attempt target (4 working hours): the one never attempted is overdue.
    clock.advance(int(timedelta(hours=4, seconds=1).total_seconds()))
    samples = await scrape(client)
    assert value(samples, "handoff_callback_requests_open", to_org="lgsco") == 2
    assert value(samples, "handoff_callback_requests_overdue", to_org="lgsco") == 1
