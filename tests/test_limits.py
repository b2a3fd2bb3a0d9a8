"""Limits and shapes: bodies over 16 KiB refused before parsing, pages of at most 100 with
cursors, request models that refuse unknown fields, read models without internal columns."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.database import Base
from app.signposts.models import Signpost
from tests.conftest import Key
from tests.helpers import assert_problem, count, failure, to_lgsco

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths

OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"
LIMIT = 16 * 1024


def document() -> dict[str, Any]:
    return dict(json.loads(OPENAPI.read_text()))


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_body_over_16_kib_is_refused_before_it_is_parsed(
    client: httpx.AsyncClient, app: Any, cqc_agent: Key
) -> None:
    # Not even JSON: a parser would answer 422, the size check answers first.
    too_big = b"{" + b"x" * LIMIT
    headers = {**cqc_agent.headers, "Content-Type": "application/json"}
    declared = await client.post("/v1/signposts", content=too_big, headers=headers)
    assert_problem(declared, 413, "payload_too_large")
    chunked = await client.post("/v1/signposts", content=chunks(too_big), headers=headers)
    assert chunked.request.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in chunked.request.headers
    assert_problem(chunked, 413, "payload_too_large")

    # A valid body of exactly 16 KiB, padded with spaces, sent either way, is accepted.
    body = json.dumps({"to_org": "lgsco"}).encode()
    exact = body + b" " * (LIMIT - len(body))
    assert (await client.post("/v1/signposts", content=exact, headers=headers)).status_code == 201
    streamed = await client.post("/v1/signposts", content=chunks(exact), headers=headers)
    assert streamed.status_code == 201, streamed.text
    assert await count(app, Signpost) == 2


async def test_the_web_sign_in_form_has_the_same_limit(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/sign-in",
        content=b"key=" + b"k" * LIMIT,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 413, "payload_too_large")


def list_operations() -> dict[str, dict[str, Any]]:
    return {
        path: item["get"]
        for path, item in document()["paths"].items()
        if "get" in item and "next_cursor" in json.dumps(_success_schema(item["get"]))
    }


def _success_schema(operation: dict[str, Any]) -> dict[str, Any]:
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"].get("$ref", "")
    return dict(document()["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {}))


def test_every_list_endpoint_pages_at_most_100_with_a_cursor() -> None:
    operations = list_operations()
    assert set(operations) == {
        "/v1/audit",
        "/v1/callbacks",
        "/v1/feedback",
        "/v1/keys",
        "/v1/signposts",
        "/v1/transfers",
    }
    for path, operation in operations.items():
        parameters = {p["name"]: p["schema"] for p in operation["parameters"]}
        assert parameters["limit"]["maximum"] == 100, path
        assert "cursor" in parameters, path
    # Every other GET answers one record or a fixed, small set.
    for path, item in document()["paths"].items():
        schema = item.get("get", {}).get("responses", {}).get("200", {})
        assert '"type": "array"' not in json.dumps(schema), path


@pytest.mark.parametrize(
    "path",
    ["/v1/audit", "/v1/callbacks", "/v1/feedback", "/v1/keys", "/v1/signposts", "/v1/transfers"],
)
async def test_a_page_over_100_is_refused(
    client: httpx.AsyncClient, key_factory: Any, path: str
) -> None:
    admin = await key_factory.make("cqc", "admin", "cqc admin")
    response = await client.get(path, params={"limit": 101}, headers=admin.headers)
    assert_problem(response, 422, "validation_error")
    assert (await client.get(path, params={"limit": 100}, headers=admin.headers)).is_success


async def test_keys_are_listed_a_page_at_a_time(
    client: httpx.AsyncClient, key_factory: Any
) -> None:
    admin = await key_factory.make("cqc", "admin", "cqc admin")
    for n in range(4):
        await key_factory.make("cqc", "agent", f"desk {n}")
    await key_factory.make("lgsco", "agent", "not ours")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/keys", params=params, headers=admin.headers)).json()
        assert len(page["items"]) <= 2
        seen += [k["name"] for k in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(["cqc admin", "desk 0", "desk 1", "desk 2", "desk 3"])


def _objects(schema: Any, components: dict[str, Any], seen: set[str]) -> list[dict[str, Any]]:
    """Every object schema reachable from `schema`."""
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                found += _objects(components[name], components, seen)
            return found
        if schema.get("type") == "object" or "properties" in schema:
            found.append(schema)
        for value in schema.values():
            found += _objects(value, components, seen)
    elif isinstance(schema, list):
        for value in schema:
            found += _objects(value, components, seen)
    return found


def test_request_models_forbid_unknown_fields() -> None:
    doc = document()
    components = doc["components"]["schemas"]
    bodies = [
        op["requestBody"]
        for item in doc["paths"].values()
        for op in item.values()
        if "requestBody" in op
    ]
    assert len(bodies) >= 7
    for body in bodies:
        for schema in _objects(body, components, set()):
            assert schema.get("additionalProperties") is False, schema.get("title")


async def test_an_unknown_field_is_refused(client: httpx.AsyncClient, cqc_agent: Key) -> None:
    response = await client.post(
        "/v1/signposts", json={"to_org": "lgsco", "priority": "high"}, headers=cqc_agent.headers
    )
    problem = assert_problem(response, 422, "validation_error")
    assert problem["errors"] == [
        {
            "field": "priority",
            "code": "extra_forbidden",
            "message": "Extra inputs are not permitted",
        }
    ]


# Columns that are the service's own business: hashes, leases, retry bookkeeping, sealed data.
def is_internal(column: str) -> bool:
    return "hash" in column or column.startswith(("lease_", "next_attempt", "response_"))


def test_read_models_expose_no_internal_columns() -> None:
    internal = {
        column.name
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if is_internal(column.name)
    }
    assert {
        "key_hash",
        "lease_owner",
        "lease_expires_at",
        "request_hash",
        "response_body",
    } <= internal
    doc = document()
    components = doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                for schema in _objects(response, components, set()):
                    shown = set(schema.get("properties", {}))
                    assert not shown & internal, (method, path, status, shown & internal)


async def test_a_read_shows_what_the_adviser_needs_and_nothing_internal(
    client: httpx.AsyncClient, clock: Any, cqc_agent: Key
) -> None:
    started = await client.post(
        "/v1/transfers",
        json=to_lgsco(clock.now(), outcome={"status": "failed", **failure("high_call_volume")}),
        headers=cqc_agent.headers,
    )
    callback = await client.get(
        f"/v1/callbacks/{started.json()['callback_request_id']}", headers=cqc_agent.headers
    )
    assert set(callback.json()["delivery"]) == {"status", "attempts", "last_error_code", "sent_at"}
