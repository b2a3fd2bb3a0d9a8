"""Recording a month of contacts through the API, at chosen moments, for the report's tests."""

from datetime import datetime, timedelta
from typing import Any

import httpx

from app.core.clock import FixedClock
from tests.conftest import Key
from tests.helpers import CALLER, iso


class Contacts:
    """Advisers' calls at given moments: each sets the clock, then calls the API as it would
    have been called then."""

    def __init__(self, client: httpx.AsyncClient, clock: FixedClock) -> None:
        self.client = client
        self.clock = clock

    async def _post(self, key: Key, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(path, json=body, headers=key.headers)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def _body(self, key: Key, to_org: str, started: datetime) -> dict[str, Any]:
        body: dict[str, Any] = {
            "to_org": to_org,
            "sender_reference": f"{key.org.upper()}-1",
            "permission_to_share_at": iso(started),
            "wait_started_at": iso(started),
        }
        if to_org == "cqc":
            body["topic"] = "other"
        return body

    async def connected(self, key: Key, to_org: str, at: datetime) -> dict[str, Any]:
        self.clock.set(at)
        started = at - timedelta(seconds=20)
        body = self._body(key, to_org, started)
        body["outcome"] = {"status": "connected", "connected_at": iso(at)}
        return await self._post(key, "/v1/transfers", body)

    async def callback(self, key: Key, to_org: str, at: datetime, reason: str) -> dict[str, Any]:
        started = at - timedelta(seconds=90 if reason == "wait_threshold_exceeded" else 10)
        self.clock.set(started)
        transfer = await self._post(key, "/v1/transfers", self._body(key, to_org, started))
        # Started, then failed: the two calls an adviser's tool makes.
        self.clock.set(at)
        body = {"reason": reason, "failed_at": iso(at), "caller": dict(CALLER)}
        response = await self.client.post(
            f"/v1/transfers/{transfer['id']}/failed", json=body, headers=key.headers
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def waiting(self, key: Key, to_org: str, at: datetime) -> dict[str, Any]:
        self.clock.set(at)
        return await self._post(key, "/v1/transfers", self._body(key, to_org, at))

    async def signpost(self, key: Key, to_org: str, at: datetime) -> dict[str, Any]:
        self.clock.set(at)
        return await self._post(key, "/v1/signposts", {"to_org": to_org, "signposted_at": iso(at)})

    async def feedback(
        self, key: Key, about_org: str, at: datetime, **fields: Any
    ) -> dict[str, Any]:
        self.clock.set(at)
        body = {
            "about_org": about_org,
            "case_references": ["CAS-1/2"],
            "reason_for_contact": "Complaint about a care home's fees",
            "names_and_times": "Adviser J, 10:15",
            "correct_advice": "The Ombudsman looks at fees complaints",
            "suggested_action": "Refresh the team on the fees route",
            **fields,
        }
        return await self._post(key, "/v1/feedback", body)
