"""Another agreement's body added from a routes file works through the whole flow."""

from pathlib import Path

import httpx
import pytest

from app.core.clock import FixedClock
from app.core.settings import Settings
from app.main import create_app
from app.protocol.routes import RouteTableError, load_table
from tests.conftest import Keys
from tests.helpers import assert_problem, failure, iso

PHSO = """
[bodies.phso]
name = "Parliamentary and Health Service Ombudsman"
short_name = "PHSO"
switchboard = "0345 015 4033"
receiving_team = "Customer Help Team"
sending_team = "PHSO Customer Help Team"
reference_label = "PHSO Reference"
callback_mailbox = "callbacks@phso.example"
feedback_mailbox = "feedback@phso.example"
signature = "Kind regards\\n\\nCustomer Help Team"

[bodies.phso.opening_hours]
days = ["monday", "tuesday", "wednesday", "thursday", "friday"]
opens = "09:00"
closes = "17:00"

[[routes]]
from = "cqc"
to = "phso"
wait_threshold_seconds = 45
sender_reference = "required"
permission_to_share = "always"
"""


@pytest.fixture
def routes_file(tmp_path: Path) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(PHSO, encoding="utf-8")
    return path


async def test_a_third_body_with_its_own_threshold(
    settings: Settings, clock: FixedClock, routes_file: Path
) -> None:
    app = create_app(settings.model_copy(update={"routes_file": routes_file}), clock=clock)
    keys = Keys(app)
    cqc = await keys.make("cqc", "agent")
    phso = await keys.make("phso", "agent")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        table = (await client.get("/v1/routes", headers=cqc.headers)).json()
        assert ("cqc", "phso") in {(r["from_org"], r["to_org"]) for r in table["routes"]}
        assert ("cqc", "lgsco") in {(r["from_org"], r["to_org"]) for r in table["routes"]}

        body = {
            "to_org": "phso",
            "sender_reference": "CQC-9",
            "permission_to_share_at": iso(clock.now()),
        }
        connects = (await client.post("/v1/transfers", json=body, headers=cqc.headers)).json()
        assert connects["dial"]["number"] == "0345 015 4033"
        assert connects["wait_threshold_seconds"] == 45
        clock.advance(45)
        ok = await client.post(
            f"/v1/transfers/{connects['id']}/connected", json={}, headers=cqc.headers
        )
        assert ok.json()["status"] == "connected"

        waits = (await client.post("/v1/transfers", json=body, headers=cqc.headers)).json()
        clock.advance(46)
        state = await client.get(f"/v1/transfers/{waits['id']}", headers=cqc.headers)
        assert state.json()["must_request_callback"] is True
        failed = await client.post(
            f"/v1/transfers/{waits['id']}/failed", json=failure(), headers=cqc.headers
        )
        callback = await client.get(
            f"/v1/callbacks/{failed.json()['callback_request_id']}", headers=cqc.headers
        )
        assert callback.json()["mailbox"] == "callbacks@phso.example"

        # PHSO sees it addressed to them and acknowledges it; LGSCO sees none of it.
        callback_id = failed.json()["callback_request_id"]
        incoming = await client.get("/v1/callbacks?direction=incoming", headers=phso.headers)
        assert [item["id"] for item in incoming.json()["items"]] == [callback_id]
        acked = await client.post(f"/v1/callbacks/{callback_id}/acknowledge", headers=phso.headers)
        assert acked.json()["state"] == "acknowledged"
        lgsco = await keys.make("lgsco", "team_leader")
        lgsco_incoming = await client.get("/v1/callbacks?direction=incoming", headers=lgsco.headers)
        assert lgsco_incoming.json()["items"] == []
        hidden = await client.get(f"/v1/callbacks/{callback_id}", headers=lgsco.headers)
        assert_problem(hidden, 404, "not_found")

        # No route was declared from PHSO back to CQC, so none exists.
        back = await client.post(
            "/v1/transfers", json={"to_org": "cqc", "topic": "other"}, headers=phso.headers
        )
        assert_problem(back, 422, "no_route")
    await app.state.engine.dispose()


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ('to = "nhsr"\nwait_threshold_seconds = 30', "unknown nhsr"),
        ('to = "lgsco"\nwait_threshold_seconds = 0', "greater than 0"),
        ('to = "cqc"\nwait_threshold_seconds = 30', "goes nowhere"),
    ],
)
def test_a_bad_routes_file_is_refused(tmp_path: Path, route: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        f'[[routes]]\nfrom = "cqc"\n{route}\n'
        'sender_reference = "optional"\npermission_to_share = "always"\n',
        encoding="utf-8",
    )
    with pytest.raises(RouteTableError, match=message):
        load_table(path)
