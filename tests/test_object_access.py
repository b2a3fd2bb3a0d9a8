"""Object-level access, for every API endpoint that takes an id, read from the app's own
OpenAPI document so that a new one cannot be missed: another body's key gets 404 (a record's
existence is not theirs to know), a key of the right body but too low a role 403, a revoked
key 401, no key 401 with a Bearer challenge; the owner's key then succeeds.

The monthly report is the exception: it is one document that both bodies share (Appendix 2
s.6), so the other body's team leader reads and publishes it as the owner's does.

A call back request has two bodies: the one that sent it (CQC here) and the one it is
addressed to (LGSCO), each with its own part of its life; so the outsider is a third body,
PHSO, added from a routes file, and the owner of acknowledge, attempts and return is LGSCO.
A feedback likewise: CQC sends it, LGSCO (the body it is about) acknowledges and answers it.

A relationship owner's key (a role outside the rank: it reads the complete reports and nothing
else) of the owner's body and of the outsider's is 403 `insufficient_role` on every row, refused
on its role before the record is looked up; on the report's reads it is 404
`report_not_complete`, as nothing these rows make is signed by both bodies (reading a complete
version: tests/test_access.py and tests/test_report_signing.py).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.audit.service import CLI
from app.core.auth import Role
from app.core.clock import FixedClock
from app.core.database import make_sessionmaker
from app.keys import service as keys
from app.main import create_app
from app.protocol.routes import RouteTable, load_table
from tests.conftest import Key, Keys
from tests.helpers import assert_problem, failed_transfer, failure, to_lgsco
from tests.test_signposts_feedback import FEEDBACK
from tests.test_third_body import PHSO


@pytest.fixture
def routes(tmp_path: Path) -> RouteTable:
    """The default table and a third body, PHSO, that is party to no call back request."""
    path = tmp_path / "routes.toml"
    path.write_text(PHSO, encoding="utf-8")
    return load_table(path)


def id_taking_operations() -> dict[str, tuple[str, str]]:
    """operationId -> (method, path) for every operation with a path parameter."""
    found = {}
    for path, item in create_app().openapi()["paths"].items():
        for method, operation in item.items():
            if "{" in path:
                found[operation["operationId"]] = (method.upper(), path)
    return found


OPERATIONS = id_taking_operations()


@dataclass
class World:
    client: httpx.AsyncClient
    clock: FixedClock
    keys: Keys
    owner: Key  # a CQC key of the role the endpoint needs

    async def agent(self) -> Key:
        """A CQC adviser, who makes the records (the owner, if it is one)."""
        if self.owner.role == Role.agent and self.owner.org == "cqc":
            return self.owner
        return await self.keys.make("cqc", "agent")

    async def post(self, key: Key, url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.client.post(url, json=body, headers=key.headers)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]


Maker = Callable[[World], Awaitable[dict[str, str]]]


async def waiting_transfer(w: World) -> dict[str, str]:
    made = await w.post(await w.agent(), "/v1/transfers", to_lgsco(w.clock.now()))
    return {"transfer_id": made["id"]}


async def callback(w: World) -> dict[str, str]:
    done = await failed_transfer(w.client, await w.agent(), w.clock.now())
    return {"callback_id": done["callback_request_id"]}


async def signpost(w: World) -> dict[str, str]:
    made = await w.post(await w.agent(), "/v1/signposts", {"to_org": "lgsco"})
    return {"signpost_id": made["id"]}


async def feedback(w: World) -> dict[str, str]:
    return {"feedback_id": (await w.post(await w.agent(), "/v1/feedback", FEEDBACK))["id"]}


async def agent_key(w: World) -> dict[str, str]:
    return {"key_id": str((await w.keys.make("cqc", "agent", "desk 5")).id)}


async def ended_month(w: World) -> dict[str, str]:
    return {"month": _last_month(w.clock.now())}


async def published_version(w: World) -> dict[str, str]:
    month = _last_month(w.clock.now())
    url = f"/v1/reports/contact-volumes/{month}/publish"
    made = await w.post(w.owner, url, {"fluctuation_note": "Quiet."})
    return {"month": month, "version": str(made["version"])}


def _last_month(now: datetime) -> str:
    return f"{now.year}-{now.month - 1:02d}" if now.month > 1 else f"{now.year - 1}-12"


@dataclass
class Case:
    make: Maker
    role: Role  # the lowest role that may call it
    body: dict[str, Any] | None = None
    ok: int = 200
    shared: bool = False  # one record for both bodies: the other body is not refused
    org: str = "cqc"  # the owner's body
    outsider: str = "lgsco"  # a body that is refused
    # Also right for the other body's second key: its body already signed this very note.
    again: tuple[int, ...] = ()
    # What a relationship owner's key of either body gets: (status, code).
    relationship_owner: tuple[int, str] = (403, "insufficient_role")


# A report's version signed by one body only (or none yet): not for relationship owners.
NOT_COMPLETE = (404, "report_not_complete")

CASES: dict[str, Case] = {
    "get_transfer": Case(waiting_transfer, Role.agent),
    "record_transfer_connected": Case(waiting_transfer, Role.agent, body={}),
    "record_transfer_failed": Case(waiting_transfer, Role.agent, body=failure("high_call_volume")),
    "record_transfer_declined": Case(waiting_transfer, Role.agent, body={}),
    "record_transfer_hung_up": Case(waiting_transfer, Role.agent, body={}),
    "get_callback": Case(callback, Role.agent, outsider="phso"),
    "acknowledge_callback": Case(callback, Role.agent, org="lgsco", outsider="phso"),
    "record_callback_attempt": Case(
        callback, Role.agent, body={"result": "no_answer"}, org="lgsco", outsider="phso"
    ),
    "return_callback": Case(
        callback, Role.agent, body={"reason": "duplicate"}, org="lgsco", outsider="phso"
    ),
    "withdraw_callback": Case(callback, Role.agent, outsider="phso"),
    "get_signpost": Case(signpost, Role.agent),
    "get_feedback": Case(feedback, Role.agent, outsider="phso"),
    "acknowledge_feedback": Case(feedback, Role.agent, org="lgsco", outsider="phso"),
    "respond_to_feedback": Case(
        feedback,
        Role.agent,
        body={"remedial_action": "Briefed the team.", "training_issue": False},
        org="lgsco",
        outsider="phso",
    ),
    "revoke_key": Case(agent_key, Role.admin),
    "get_contact_volume_report": Case(
        ended_month, Role.team_leader, shared=True, relationship_owner=NOT_COMPLETE
    ),
    "get_contact_volume_report_version": Case(
        published_version, Role.team_leader, shared=True, relationship_owner=NOT_COMPLETE
    ),
    "publish_contact_volume_report": Case(
        ended_month,
        Role.team_leader,
        body={"fluctuation_note": "Quiet."},
        ok=201,
        shared=True,
        again=(409,),
    ),
    "sign_contact_volume_report": Case(
        ended_month,
        Role.team_leader,
        body={"fluctuation_note": "Quiet."},
        ok=201,
        shared=True,
        again=(409,),
    ),
}

LOWER = {Role.team_leader: Role.agent, Role.admin: Role.team_leader}


def test_every_id_taking_endpoint_has_a_row_in_the_table() -> None:
    assert set(OPERATIONS) == set(CASES), "add a row to CASES for each new endpoint"


async def _revoked(app, key_factory: Keys, org: str, role: Role) -> Key:  # type: ignore[no-untyped-def]
    key = await key_factory.make(org, role, "revoked")
    async with make_sessionmaker(app.state.engine)() as session:
        await keys.revoke_key(session, key.id, now=app.state.clock.now(), actor=CLI)
        await session.commit()
    return key


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_an_id_taking_endpoint_lets_in_only_its_own_body_and_role(
    operation: str, app, client: httpx.AsyncClient, clock: FixedClock, key_factory: Keys
) -> None:
    method, path = OPERATIONS[operation]
    case = CASES[operation]
    owner = await key_factory.make(case.org, case.role, "owner")
    url = path.format(**await case.make(World(client, clock, key_factory, owner)))

    async def call(key: Key | None) -> httpx.Response:
        headers = key.headers if key else {}
        return await client.request(method, url, json=case.body, headers=headers)

    for role in {case.role, Role.admin}:  # the other body's highest role is no better
        other = await call(await key_factory.make(case.outsider, role, "other body"))
        if case.shared:
            assert other.status_code in (case.ok, *case.again), other.text
        else:
            assert_problem(other, 404, "not_found")

    if case.role in LOWER:
        lower = await call(await key_factory.make(case.org, LOWER[case.role], "lower role"))
        assert_problem(lower, 403, "insufficient_role")

    for body in {case.org, case.outsider}:
        reader_key = await key_factory.make(body, Role.relationship_owner, "relationship owner")
        reader = await call(reader_key)
        assert_problem(reader, *case.relationship_owner)

    revoked = await call(await _revoked(app, key_factory, case.org, case.role))
    assert_problem(revoked, 401, "invalid_api_key")
    assert revoked.headers["www-authenticate"].startswith("Bearer")

    anonymous = await call(None)
    assert_problem(anonymous, 401, "unauthenticated")
    assert anonymous.headers["www-authenticate"].startswith("Bearer")

    # Only now the owner: none of the refused calls above changed the record.
    allowed = await call(owner)
    assert allowed.status_code == case.ok, allowed.text
