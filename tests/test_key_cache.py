"""API keys are remembered briefly per process; revocation still takes effect within a bound."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from app.core import auth
from app.keys.models import ApiKey
from tests.conftest import Key, Keys
from tests.helpers import assert_problem


async def test_a_key_revoked_through_the_api_is_refused_at_once(
    client, key_factory: Keys, cqc_agent: Key
) -> None:
    assert (await client.get("/v1/routes", headers=cqc_agent.headers)).status_code == 200
    admin = await key_factory.make("cqc", "admin")
    revoked = await client.post(f"/v1/keys/{cqc_agent.id}/revoke", headers=admin.headers)
    assert revoked.status_code == 200
    assert_problem(
        await client.get("/v1/routes", headers=cqc_agent.headers), 401, "invalid_api_key"
    )


async def test_a_key_revoked_by_another_process_is_refused_after_the_cache_window(
    app, client, cqc_agent: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.get("/v1/routes", headers=cqc_agent.headers)).status_code == 200
    # As `handoff keys revoke` would from another process: straight to the database.
    async with app.state.engine.begin() as connection:
        await connection.execute(
            update(ApiKey).where(ApiKey.id == cqc_agent.id).values(revoked_at=datetime.now(UTC))
        )
    # Within the window this process still trusts the key it has just seen ...
    assert (await client.get("/v1/routes", headers=cqc_agent.headers)).status_code == 200
    # ... and once PRINCIPAL_CACHE_SECONDS have passed, it asks the database again.
    later = auth._monotonic() + auth.PRINCIPAL_CACHE_SECONDS + 0.1
    monkeypatch.setattr(auth, "_monotonic", lambda: later)
    assert_problem(
        await client.get("/v1/routes", headers=cqc_agent.headers), 401, "invalid_api_key"
    )
