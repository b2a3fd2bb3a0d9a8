"""A body added by a routes file appears in the report with its route."""

from pathlib import Path

import pytest

from app.core.clock import FixedClock
from app.protocol.routes import RouteTable, load_table
from tests.conftest import Key
from tests.events import Contacts
from tests.test_report_api import OCT, at


@pytest.fixture
def contacts(client, clock: FixedClock) -> Contacts:  # type: ignore[no-untyped-def]
    return Contacts(client, clock)


THIRD_BODY = """
[bodies.hwe]
name = "Healthwatch England"
short_name = "HWE"
switchboard = "03000 683 000"
receiving_team = "Enquiries"
sending_team = "Enquiries"
reference_label = "HWE Reference"
callback_mailbox = "enquiries@healthwatch.example.org"
feedback_mailbox = "managers@healthwatch.example.org"
signature = "Healthwatch England"

[bodies.hwe.opening_hours]
days = ["monday", "tuesday", "wednesday", "thursday", "friday"]
opens = "09:00"
closes = "17:00"

[[routes]]
from = "hwe"
to = "cqc"
wait_threshold_seconds = 45
sender_reference = "optional"
permission_to_share = "with_sender_reference"

[routes.ivr_options.other]
option = 1
label = "All enquiries"
"""


@pytest.fixture
def routes(tmp_path: Path) -> RouteTable:
    """The protocol's table plus a third body from a routes file (overrides conftest's)."""
    extra = tmp_path / "routes.toml"
    extra.write_text(THIRD_BODY, encoding="utf-8")
    return load_table(extra)


async def test_every_route_of_the_table_is_in_the_report(
    client, clock: FixedClock, contacts: Contacts, key_factory, cqc_leader: Key
) -> None:
    hwe = await key_factory.make("hwe", "agent")
    await contacts.signpost(hwe, "cqc", at("2026-10-05T10:00:00"))
    clock.set(at("2026-11-02T10:00:00"))
    report = (
        await client.get(f"/v1/reports/contact-volumes/{OCT}", headers=cqc_leader.headers)
    ).json()
    assert [d["label"] for d in report["directions"]] == [
        "CQC to LGSCO",
        "LGSCO to CQC",
        "HWE to CQC",
    ]
    assert report["directions"][2]["this_month"]["signposts"] == 1
    assert [g["label"] for g in report["feedback"]] == [
        "CQC to LGSCO",
        "LGSCO to CQC",
        "HWE to CQC",
    ]
