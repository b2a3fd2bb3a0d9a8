"""Structured logs and request ids: what an operator sees, and what must never be in it."""

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.core.clock import FixedClock
from app.core.observability import JsonFormatter, TextFormatter, configure_logging
from app.core.settings import Settings
from tests.conftest import Key
from tests.helpers import CALLER, failure, to_lgsco

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths

LogLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines(settings: Settings) -> Iterator[LogLines]:
    """Every log line written while the test runs, parsed, at the most talkative level."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(
        settings.model_copy(update={"log_level": "DEBUG", "log_format": "json"}), stream
    )
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "handoff.access"]


async def test_a_request_id_from_the_caller_is_echoed_and_logged(client, log_lines) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.42"})

    assert response.headers["X-Request-ID"] == "lb-7f3a.42"
    [line] = access_lines(log_lines())
    assert line["request_id"] == "lb-7f3a.42"
    assert line["method"] == "GET"
    assert line["route"] == "/healthz"
    assert line["status"] == 200
    assert line["duration_ms"] >= 0
    assert line["level"] == "info"
    assert isinstance(line["pid"], int)


@pytest.mark.parametrize(
    "sent", [None, b"", b"has spaces", b"x" * 129, b'quote"and{brace}', "ünïcode".encode()]
)
async def test_a_missing_or_unsafe_request_id_is_replaced_by_a_new_one(client, sent) -> None:
    headers = {"X-Request-ID": sent} if sent is not None else {}
    first = await client.get("/healthz", headers=headers)
    second = await client.get("/healthz", headers=headers)

    made = first.headers["X-Request-ID"]
    assert len(made) == 32 and int(made, 16) >= 0
    assert second.headers["X-Request-ID"] != made


async def test_every_response_carries_a_request_id_even_a_404_or_a_problem(
    client, cqc_agent: Key
) -> None:
    missing = await client.get("/no/such/page")
    refused = await client.get("/v1/transfers/not-a-uuid", headers=cqc_agent.headers)
    unauthenticated = await client.get("/v1/routes")

    for response in (missing, refused, unauthenticated):
        assert response.status_code >= 400
        assert len(response.headers["X-Request-ID"]) == 32


async def test_the_access_log_names_the_route_template_never_the_path_or_query(
    client, log_lines, cqc_agent: Key
) -> None:
    await client.get(
        "/v1/transfers/7d4a0a38-58a6-4a47-9c1f-6bd1b2a3c4d5?caller=Ada", headers=cqc_agent.headers
    )
    await client.get("/v1/Ada-Lovelace/07911123456?name=Ada")

    found, unmatched = access_lines(log_lines())
    assert found["route"] == "/v1/transfers/{transfer_id}"
    assert found["status"] == 404
    assert unmatched["route"] == "unmatched"
    text = json.dumps(log_lines())
    assert "7d4a0a38" not in text
    assert "Ada" not in text and "07911" not in text


async def test_an_unexpected_error_is_logged_by_type_and_stack_never_by_its_message(
    app, client, log_lines
) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("duplicate key value (name)=(Ada Lovelace)")

    response = await client.get("/boom", headers={"X-Request-ID": "req-500"})

    assert response.status_code == 500
    assert response.headers["X-Request-ID"] == "req-500"
    lines = log_lines()
    assert "Ada Lovelace" not in json.dumps(lines)
    [access] = access_lines(lines)
    assert access["status"] == 500 and access["route"] == "/boom"
    errors = [line for line in lines if line["level"] == "error"]
    assert errors and all(line["request_id"] == "req-500" for line in errors)


def test_an_exception_in_a_log_record_shows_its_type_and_frames_only() -> None:
    try:
        raise ValueError("contact number 07911 123456")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed", (), exc_info=__import__("sys").exc_info()
        )
    as_json = json.loads(JsonFormatter().format(record))
    as_text = TextFormatter().format(record)

    assert as_json["exc_type"] == "ValueError"
    assert any("test_observability.py" in frame for frame in as_json["stack"])
    assert "07911" not in json.dumps(as_json) and "07911" not in as_text
    assert "exc_type=ValueError" in as_text


def test_text_format_is_one_readable_line(settings: Settings) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    handler = configure_logging(settings.model_copy(update={"log_format": "text"}), stream)
    try:
        logging.getLogger("handoff.test").info("started", extra={"workers": 2})
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    line = stream.getvalue().strip()
    assert "INFO" in line and "handoff.test: started" in line and line.endswith("workers=2")


def test_log_settings_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("HANDOFF_LOG_FORMAT", "TEXT")
    monkeypatch.setenv("HANDOFF_LOG_LEVEL", "warning")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.log_format, settings.log_level) == ("text", "WARNING")


async def test_a_transfer_that_becomes_a_call_back_leaves_no_caller_details_in_the_logs(
    client, log_lines, clock: FixedClock, cqc_agent: Key
) -> None:
    """The whole adviser's story, at DEBUG level, with the details in every place a request
    can carry them: JSON bodies, a refused body, a query string, an unknown path."""
    started = await client.post(
        "/v1/transfers", json=to_lgsco(clock.now()), headers=cqc_agent.headers
    )
    assert started.status_code == 201, started.text
    transfer_id = started.json()["id"]
    clock.advance(61)
    refused = await client.post(
        f"/v1/transfers/{transfer_id}/failed",
        json=failure(caller={**CALLER, "contact_number": f"{CALLER['name']} {CALLER['provider']}"}),
        headers=cqc_agent.headers,
    )
    assert refused.status_code == 422
    failed = await client.post(
        f"/v1/transfers/{transfer_id}/failed", json=failure(), headers=cqc_agent.headers
    )
    assert failed.status_code == 200, failed.text
    callback_id = failed.json()["callback_request_id"]
    shown = await client.get(f"/v1/callbacks/{callback_id}", headers=cqc_agent.headers)
    assert shown.json()["caller"]["name"] == CALLER["name"]  # the API itself does return them
    await client.get("/v1/callbacks", params={"q": CALLER["name"]}, headers=cqc_agent.headers)
    await client.get(f"/v1/{CALLER['provider']}", params={"number": CALLER["contact_number"]})
    metrics = await client.get("/metrics")

    lines = log_lines()
    assert len(access_lines(lines)) == 7
    everything = json.dumps(lines) + metrics.text
    for value in (*CALLER.values(), "+447911123456", "7911123456", "Lovelace", "Sunrise"):
        assert value not in everything, value
