"""The route table, health checks, bad input in general, and the committed OpenAPI document."""

import json
from pathlib import Path

import pytest

from app.cli import openapi_document
from tests.conftest import Key
from tests.helpers import assert_problem

ROOT = Path(__file__).resolve().parents[1]


async def test_the_route_table_is_published_for_integrations(client, cqc_agent: Key) -> None:
    response = await client.get("/v1/routes", headers=cqc_agent.headers)
    assert response.status_code == 200
    routes = {(r["from_org"], r["to_org"]): r for r in response.json()["routes"]}
    to_lgsco, to_cqc = routes[("cqc", "lgsco")], routes[("lgsco", "cqc")]
    assert to_lgsco["wait_threshold_seconds"] == 60
    assert to_lgsco["dial_number"] == "0300 061 0614"
    assert to_lgsco["callback_mailbox"] == "intake@lgo.org.uk"
    assert to_lgsco["reference_label"] == "CQC Reference"
    assert to_lgsco["feedback_mailbox"] == "intakemanagers@lgo.org.uk"
    assert to_cqc["wait_threshold_seconds"] == 30
    assert to_cqc["dial_number"] == "03000 616 161"
    assert to_cqc["ivr_options"]["mental_health"]["option"] == 1
    assert to_cqc["ivr_options"]["other"]["option"] == 2
    assert to_cqc["callback_mailbox"] == "concerns@cqc.org.uk"
    assert to_cqc["reference_label"] == "LGSCO Reference"
    assert to_cqc["feedback_mailbox"] == "NCSCConcernsTeamTMs@cqc.org.uk"


async def test_health_and_readiness(client) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


async def test_readiness_fails_when_migrations_are_behind(app, client) -> None:
    from sqlalchemy import text

    async with app.state.engine.begin() as connection:
        head = (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        await connection.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    try:
        assert_problem(await client.get("/readyz"), 503, "migrations_pending")
    finally:  # the PostgreSQL leg shares one migrated database across tests
        async with app.state.engine.begin() as connection:
            await connection.execute(
                text("UPDATE alembic_version SET version_num = :head"), {"head": head}
            )


@pytest.mark.parametrize(
    ("method", "url", "content", "status", "code"),
    [
        ("POST", "/v1/transfers", b"{not json", 400, "invalid_json"),
        ("POST", "/v1/transfers", b"[]", 422, "validation_error"),
        ("POST", "/v1/transfers", b"", 422, "validation_error"),
        ("POST", "/v1/transfers", b'{"to_org": 5}', 422, "validation_error"),
        ("GET", "/v1/transfers/not-a-uuid", None, 422, "validation_error"),
        ("GET", "/v1/transfers/00000000-0000-0000-0000-000000000000", None, 404, "not_found"),
        ("GET", "/v1/nowhere", None, 404, "not_found"),
        ("DELETE", "/v1/transfers", None, 405, "method_not_allowed"),
    ],
)
async def test_bad_requests_are_problems_never_500s(
    client, cqc_agent: Key, method: str, url: str, content: bytes | None, status: int, code: str
) -> None:
    response = await client.request(
        method,
        url,
        content=content,
        headers={**cqc_agent.headers, "Content-Type": "application/json"},
    )
    body = assert_problem(response, status, code)
    assert "Traceback" not in response.text
    assert body["type"].endswith(code)


def test_the_committed_openapi_document_matches_the_app() -> None:
    committed = (ROOT / "openapi" / "openapi.json").read_text(encoding="utf-8")
    assert json.loads(committed) == json.loads(openapi_document()), (
        "openapi/openapi.json is stale: run 'handoff openapi export'"
    )


def test_operation_ids_are_readable() -> None:
    document = json.loads(openapi_document())
    ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert all(i.replace("_", "").isalpha() and i.islower() for i in ids), ids


@pytest.mark.parametrize("path", ["/v1/feedback", "/v1/keys"])
async def test_a_405_lists_every_method_the_path_allows(client, cqc_agent: Key, path: str) -> None:
    response = await client.delete(path, headers=cqc_agent.headers)
    body = assert_problem(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, POST"
    assert "GET, POST" in body["detail"]


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
async def test_a_post_whose_body_is_not_json_is_415(
    client, cqc_agent: Key, content_type: str | None
) -> None:
    headers = dict(cqc_agent.headers)
    if content_type:
        headers["Content-Type"] = content_type
    response = await client.post("/v1/signposts", content=b'{"to_org": "lgsco"}', headers=headers)
    body = assert_problem(response, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in body["detail"]


async def test_json_media_types_and_bodiless_posts_are_accepted(client, cqc_agent: Key) -> None:
    for content_type in ("application/json", "application/json; charset=utf-8"):
        response = await client.post(
            "/v1/signposts",
            content=b'{"to_org": "lgsco"}',
            headers={**cqc_agent.headers, "Content-Type": content_type},
        )
        assert response.status_code == 201, response.text
    # No body, no Content-Type: not a media type problem (here the body is simply missing).
    assert_problem(
        await client.post("/v1/signposts", headers=cqc_agent.headers), 422, "validation_error"
    )


async def test_malformed_json_is_invalid_json_naming_where(client, cqc_agent: Key) -> None:
    response = await client.post(
        "/v1/signposts",
        content=b'{\n  "to_org": "lgsco",\n  "note" 5\n}',
        headers={**cqc_agent.headers, "Content-Type": "application/json"},
    )
    body = assert_problem(response, 400, "invalid_json")
    assert (body["line"], body["column"], body["position"]) == (3, 10, 32)
    assert "line 3, column 10" in body["detail"]
    assert body["errors"] == [{"field": "body", "code": "invalid_json", "message": body["detail"]}]

    not_text = await client.post(
        "/v1/signposts",
        content=b'{"to_org": "\xff"}',
        headers={**cqc_agent.headers, "Content-Type": "application/json"},
    )
    assert_problem(not_text, 400, "invalid_json")
