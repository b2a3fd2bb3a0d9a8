"""No caller's name, number (in any format) or provider in any log line: the real `handoff
serve` process at DEBUG level, with its outbox worker sending through a real SMTP server
(aiosmtpd) and purging, through a whole transfer -> call back -> email -> purge story.

Everything the process writes is read (stdout and stderr: every logger that propagates to the
root, uvicorn's included, as the JSON lines of app/core/observability.py)."""

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import CALLER, failure, to_cqc, to_lgsco
from tests.outbox_support import SmtpServer
from tests.server import Server, clean_env, free_port, run, script

# The hot operations' answers, with the hot path and without it (tests/conftest.py).
pytestmark = pytest.mark.both_paths

WAIT_SECONDS = 60  # how long to wait for the worker before giving up (not a measurement)

# Every way the caller's details could be written: as given, as stored (E.164), as shown in
# the email, and in parts.
SECOND_CALLER = {
    "name": "Zebedee Quartermaine",
    "contact_number": "+44 20 7946 0321",
    "provider": "Rookwood Lodge",
}
FORBIDDEN = (
    CALLER["name"],
    "Lovelace",
    CALLER["provider"],
    "Sunrise",
    SECOND_CALLER["name"],
    "Quartermaine",
    SECOND_CALLER["provider"],
    "Rookwood",
)
NUMBERS = (
    re.compile(r"7911\D{0,3}123\D?456"),  # 07911 123456, +447911123456, 7911-123-456 ...
    re.compile(r"20\D{0,3}7946\D{0,3}0321"),  # +44 20 7946 0321, 02079460321 ...
)


def wait_for(what: str, check: Callable[[], Any], server: Server) -> Any:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {WAIT_SECONDS}s:\n{server.logs()}")


def test_no_callers_details_in_any_log_line_of_a_whole_story(
    database_url: str, tmp_path: Path, hot_path: bool
) -> None:
    smtp = SmtpServer().start()
    port = free_port()
    env = clean_env(
        HANDOFF_DATABASE_URL=database_url,
        HANDOFF_EMAIL_BACKEND="smtp",
        HANDOFF_SMTP_HOST="127.0.0.1",
        HANDOFF_SMTP_PORT=str(smtp.port),
        HANDOFF_LOG_LEVEL="DEBUG",
        HANDOFF_LOG_FORMAT="json",
        HANDOFF_HOT_PATH=str(hot_path).lower(),
        HANDOFF_OUTBOX_POLL_SECONDS="0.2",
        HANDOFF_CALLBACK_RETENTION_DAYS="0",  # purged as soon as the request is closed
        HANDOFF_PURGE_INTERVAL_SECONDS="0.5",
    )
    cqc = re.search(
        r"secret:\s+(\S+)",
        run(
            [script(), "keys", "create", "--org", "cqc", "--role", "agent", "--name", "desk 1"], env
        ),
    ).group(1)  # type: ignore[union-attr]
    lgsco = re.search(
        r"secret:\s+(\S+)",
        run(
            [script(), "keys", "create", "--org", "lgsco", "--role", "agent", "--name", "desk 2"],
            env,
        ),
    ).group(1)  # type: ignore[union-attr]
    server = Server([script(), "serve", "--port", str(port)], env, port, tmp_path)
    try:
        server.wait_until_healthy()
        with httpx.Client(base_url=server.base_url, timeout=30) as http:

            def as_(secret: str) -> dict[str, str]:
                return {"Authorization": f"Bearer {secret}"}

            # CQC: started, then failed after the wait.
            started = http.post("/v1/transfers", json=to_lgsco(datetime.now(UTC)), headers=as_(cqc))
            assert started.status_code == 201, started.text
            transfer_id = started.json()["id"]
            # A refused body carrying the details where they do not belong.
            refused = http.post(
                f"/v1/transfers/{transfer_id}/failed",
                json=failure(caller={**CALLER, "contact_number": CALLER["name"]}),
                headers=as_(cqc),
            )
            assert refused.status_code == 422
            failed = http.post(
                f"/v1/transfers/{transfer_id}/failed",
                json=failure("high_call_volume"),
                headers=as_(cqc),
            )
            assert failed.status_code == 200, failed.text
            first = failed.json()["callback_request_id"]
            # LGSCO: failed in one request (the one-statement path).
            outcome = {"status": "failed", **failure("high_call_volume", caller=SECOND_CALLER)}
            one = http.post(
                "/v1/transfers",
                json=to_cqc(
                    sender_reference="LG-1",
                    permission_to_share_at=datetime.now(UTC).isoformat(),
                    outcome=outcome,
                ),
                headers=as_(lgsco),
            )
            assert one.status_code == 201, one.text
            second = one.json()["callback_request_id"]
            # The details in a query string and a path, as a careless client might send them.
            http.get("/v1/callbacks", params={"q": CALLER["name"]}, headers=as_(cqc))
            http.get(f"/v1/{CALLER['provider']}", params={"n": CALLER["contact_number"]})

            wait_for("two emails", lambda: len(smtp.received) == 2, server)
            # Each sending body withdraws its request: closed, so due for the purge at once.
            for callback_id, key in ((first, cqc), (second, lgsco)):
                withdrawn = http.post(f"/v1/callbacks/{callback_id}/withdraw", headers=as_(key))
                assert withdrawn.status_code == 200, withdrawn.text

            def purged() -> bool:
                shown = [
                    http.get(f"/v1/callbacks/{first}", headers=as_(cqc)).json(),
                    http.get(f"/v1/callbacks/{second}", headers=as_(lgsco)).json(),
                ]
                return all(s["personal_data_purged_at"] and s["caller"] is None for s in shown)

            wait_for("the worker's purge", purged, server)
    finally:
        server.stop()
        server.kill_leftovers()
        smtp.stop()

    # The details did travel: to the mailboxes, where they belong.
    bodies = "".join(r.message.get_body(("plain",)).get_content() for r in smtp.received)  # type: ignore[union-attr]
    assert CALLER["name"] in bodies and SECOND_CALLER["provider"] in bodies

    records = server.log_records()  # every line is one JSON object
    loggers = {r["logger"] for r in records}
    assert {"handoff.access", "handoff.outbox", "handoff.retention"} <= loggers, loggers
    assert any(r["logger"].startswith("uvicorn") for r in records), loggers
    assert any("sent" in r["message"] for r in records if r["logger"] == "handoff.outbox")
    text = server.logs() + json.dumps(records, ensure_ascii=False)
    for value in FORBIDDEN:
        assert value not in text, value
    for number in NUMBERS:
        assert not number.search(text), number.pattern
