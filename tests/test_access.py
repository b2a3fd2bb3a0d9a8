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
