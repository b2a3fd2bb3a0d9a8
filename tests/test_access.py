"""Who may see what: keys, bodies and roles."""

from app.core.clock import FixedClock
from tests.conftest import Key, Keys
from tests.helpers import assert_problem, failed_transfer


async def test_no_key_is_401_with_a_bearer_challenge(client) -> None:
    response = await client.get("/v1/routes")
    body = assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "key" in body["detail"]


async def test_an_unknown_or_revoked_key_is_401(client, key_factory: Keys, cqc_agent: Key) -> None:
    bogus = await client.get("/v1/routes", headers={"Authorization": "Bearer hk_nope"})
    assert_problem(bogus, 401, "invalid_api_key")
    basic = await client.get("/v1/routes", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert_problem(basic, 401, "unauthenticated")

    admin = await key_factory.make("cqc", "admin")
    revoked = await client.post(f"/v1/keys/{cqc_agent.id}/revoke", headers=admin.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    after = await client.get("/v1/routes", headers=cqc_agent.headers)
    assert_problem(after, 401, "invalid_api_key")


async def test_colleagues_of_the_same_body_can_read_a_record_by_id(
    client, clock: FixedClock, cqc_agent: Key, key_factory: Keys
) -> None:
    done = await failed_transfer(client, cqc_agent, clock.now())
    colleague = await key_factory.make("cqc", "agent", "desk 2")
    response = await client.get(f"/v1/transfers/{done['id']}", headers=colleague.headers)
    assert response.status_code == 200


async def test_lists_are_for_team_leaders(client, cqc_agent: Key, cqc_leader: Key) -> None:
    for url in ("/v1/callbacks", "/v1/feedback", "/v1/transfers", "/v1/signposts"):
        assert_problem(await client.get(url, headers=cqc_agent.headers), 403, "insufficient_role")
        assert (await client.get(url, headers=cqc_leader.headers)).status_code == 200


async def test_admins_manage_their_own_bodys_keys(
    client, key_factory: Keys, cqc_leader: Key, lgsco_agent: Key
) -> None:
    admin = await key_factory.make("cqc", "admin")
    forbidden = await client.post(
        "/v1/keys", json={"role": "agent", "name": "desk 9"}, headers=cqc_leader.headers
    )
    assert_problem(forbidden, 403, "insufficient_role")

    created = await client.post(
        "/v1/keys", json={"role": "agent", "name": "desk 9"}, headers=admin.headers
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert created.json()["org"] == "cqc"
    works = await client.get("/v1/routes", headers={"Authorization": f"Bearer {secret}"})
    assert works.status_code == 200

    listed = (await client.get("/v1/keys", headers=admin.headers)).json()["items"]
    assert {k["org"] for k in listed} == {"cqc"}
    assert all("secret" not in k and "key_hash" not in k for k in listed)
    other_body = await client.post(f"/v1/keys/{lgsco_agent.id}/revoke", headers=admin.headers)
    assert_problem(other_body, 404, "not_found")


async def test_keys_are_stored_only_as_a_hash(app, cqc_agent: Key) -> None:
    from sqlalchemy import select

    from app.keys.models import ApiKey

    async with app.state.sessionmaker() as session:
        stored = (await session.scalars(select(ApiKey))).all()
    assert all(cqc_agent.secret not in (k.key_hash, k.key_prefix, k.name) for k in stored)
    assert all(len(k.key_hash) == 64 for k in stored)


# --- relationship owners: the complete reports and nothing else -----------------------------

# The API operations a relationship owner's key may use: the complete versions of the report.
COMPLETE_REPORT_OPERATIONS = {
    "list_complete_report_versions",
    "get_contact_volume_report",
    "get_contact_volume_report_version",
}
# Answered to any caller, with or without a key (a load balancer's probes).
OPEN_OPERATIONS = {"healthz", "readyz"}
# The pages a relationship owner may open, besides signing in and out and the start page.
COMPLETE_REPORT_PAGES = ("/complete-reports",)
ANY_SIGNED_IN_PAGE = {"/", "/sign-in", "/sign-out"}


def _operations(app) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(operationId, method, path) of every operation of the app's OpenAPI document."""
    return [
        (operation["operationId"], method.upper(), path)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    ]


def page_routes(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(method, path) of every page the app serves, read from its routes (a router included
    into the app is opened up), so that a new page cannot be missed."""
    from app.web.pages import PageAPIRoute

    found = []
    for entry in app.routes:
        inner = getattr(getattr(entry, "original_router", None), "routes", [entry])
        for route in inner:
            if isinstance(route, PageAPIRoute):
                found += [(method, route.path) for method in sorted(route.methods)]
    return found


async def _complete_october(client, clock: FixedClock, key_factory: Keys) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    clock.set(datetime(2026, 11, 3, 10, 0, tzinfo=UTC))
    for org in ("cqc", "lgsco"):
        leader = await key_factory.make(org, "team_leader", f"{org} leader")
        signed = await client.post(
            "/v1/reports/contact-volumes/2026-10/sign",
            json={"fluctuation_note": f"{org}: quiet."},
            headers=leader.headers,
        )
        assert signed.status_code == 201, signed.text


async def test_a_relationship_owners_key_is_refused_on_every_operation_but_the_complete_reports(
    app, client, clock: FixedClock, key_factory: Keys, cqc_agent: Key
) -> None:
    """Every operation of the API, read from its OpenAPI document: a relationship owner's key
    (of either body) is 403 `insufficient_role` on each, before any record is looked up, except
    the complete versions of the report, which it reads. The id-taking operations are checked
    again against real records in tests/test_object_access.py."""
    await _complete_october(client, clock, key_factory)
    done = await failed_transfer(client, cqc_agent, clock.now())
    values = {
        "transfer_id": done["id"],
        "callback_id": done["callback_request_id"],
        "signpost_id": done["id"],  # no such signpost: refused before it is looked up
        "feedback_id": done["id"],
        "key_id": str(cqc_agent.id),
        "month": "2026-10",
        "version": "1",
    }
    operations = _operations(app)
    assert {name for name, _, _ in operations} >= COMPLETE_REPORT_OPERATIONS
    for org in ("cqc", "lgsco"):
        owner = await key_factory.make(org, "relationship_owner", f"{org} relationship owner")
        for name, method, path in operations:
            if name in OPEN_OPERATIONS:
                continue
            url = path.format(**values)
            body = {} if method == "POST" else None
            response = await client.request(method, url, json=body, headers=owner.headers)
            if name in COMPLETE_REPORT_OPERATIONS:
                assert response.status_code == 200, (name, response.text)
            else:
                assert_problem(response, 403, "insufficient_role")
    # The complete reports do not let in a key of the rank below team leader.
    for name, method, path in operations:
        if name in COMPLETE_REPORT_OPERATIONS:
            url = path.format(**values)
            response = await client.request(method, url, headers=cqc_agent.headers)
            assert_problem(response, 403, "insufficient_role")


async def test_a_relationship_owner_reaches_no_page_but_the_complete_reports(
    app, client, clock: FixedClock, key_factory: Keys, cqc_agent: Key
) -> None:
    """Every page the app serves, read from its routes: a signed-in relationship owner gets the
    403 page on each (forms posted with a good CSRF token, so the refusal is the role's), except
    the complete reports, the start page (which takes them there) and signing in and out."""
    from tests.test_signposts_feedback import FEEDBACK
    from tests.test_web_navigation import visible_text
    from tests.test_web_reports import csrf, sign_in

    await _complete_october(client, clock, key_factory)
    done = await failed_transfer(client, cqc_agent, clock.now())
    made = await client.post("/v1/feedback", json=FEEDBACK, headers=cqc_agent.headers)
    values = {
        "{transfer_id}": done["id"],
        "{callback_id}": done["callback_request_id"],
        "{feedback_id}": made.json()["id"],
        "{month}": "2026-10",
        "{version}": "1",
        "{extension}": "csv",
    }
    owner = await key_factory.make("lgsco", "relationship_owner", "lgsco relationship owner")
    assert (await sign_in(client, owner)).headers["location"] == "/complete-reports"
    token = csrf(await client.get("/complete-reports"))
    pages = page_routes(app)
    assert ("GET", "/complete-reports/{month}/versions/{version}") in pages
    refused = 0
    for method, template in pages:
        if template in ANY_SIGNED_IN_PAGE:
            continue
        path = template
        for name, value in values.items():
            path = path.replace(name, value)
        assert "{" not in path, path
        data = {"csrf_token": token} if method == "POST" else None
        page = await client.request(method, path, data=data)
        if template.startswith(COMPLETE_REPORT_PAGES):
            assert page.status_code in (200, 303), (path, page.status_code)
            continue
        assert page.status_code == 403, (method, path, page.status_code)
        assert page.headers["content-type"].startswith("text/html"), path
        assert "You cannot see this page" in visible_text(page), path
        refused += 1
    assert refused > 30  # the advisers', team leaders' and call back pages all refused
    start = await client.get("/")
    assert start.status_code == 303 and start.headers["location"] == "/complete-reports"
