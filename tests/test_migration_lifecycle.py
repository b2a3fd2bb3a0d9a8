"""Migration 0008_callback_lifecycle: requests made before it get their state and due times."""

import sqlite3
import uuid
from pathlib import Path

from app.core.migrate import upgrade
from tests.conftest import sqlite_url

KEY, TRANSFER, CALLBACK = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex


def test_existing_requests_become_requested_with_their_due_times(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    upgrade(sqlite_url(path), "0005_http")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO api_keys (id, org, role, name, key_hash, key_prefix, created_at) "
            "VALUES (?, 'cqc', 'agent', 'desk', ?, 'hk_x', '2026-11-06 10:00:00.000000')",
            (KEY, "0" * 64),
        )
        db.execute(
            "INSERT INTO transfers (id, from_org, to_org, wait_started_at, "
            "wait_threshold_seconds, status, created_by_key_id, created_at) VALUES "
            "(?, 'cqc', 'lgsco', '2026-11-06 15:00:00.000000', 60, 'failed', ?, "
            "'2026-11-06 15:00:00.000000')",
            (TRANSFER, KEY),
        )
        # Friday 6 November 2026, 15:00 UTC (15:00 in London): an hour before LGSCO closes.
        db.execute(
            "INSERT INTO callback_requests (id, transfer_id, from_org, to_org, reason, "
            "sender_reference, permission_to_share_at, mailbox, requested_at, "
            "created_by_key_id, created_at) VALUES (?, ?, 'cqc', 'lgsco', 'high_call_volume', "
            "'CQC-1', '2026-11-06 15:00:00.000000', 'intake@lgo.org.uk', "
            "'2026-11-06 15:00:00.000000', ?, '2026-11-06 15:00:00.000000')",
            (CALLBACK, TRANSFER, KEY),
        )
        db.execute(
            "INSERT INTO caller_details (callback_request_id, name, contact_number, provider) "
            "VALUES (?, 'Ada', '+447911123456', 'Sunrise Care Home')",
            (CALLBACK,),
        )
    upgrade(sqlite_url(path))
    with sqlite3.connect(path) as db:
        # Rebuilding callback_requests (batch mode) must not cascade to the caller's details.
        kept = db.execute(
            "SELECT name FROM caller_details WHERE callback_request_id = ?", (CALLBACK,)
        ).fetchall()
        assert kept == [("Ada",)]
        row = db.execute(
            "SELECT state, outcome, version, first_attempt_due_at, close_due_at "
            "FROM callback_requests WHERE id = ?",
            (CALLBACK,),
        ).fetchone()
    state, outcome, version, first_due, close_due = row
    assert (state, outcome, version) == ("requested", None, 1)
    # 1 working hour on Friday, 3 on Monday (10:00-16:00); 16 hours: 1 + 6 + 6 + 3.
    assert first_due.startswith("2026-11-09 13:00:00")
    assert close_due.startswith("2026-11-11 13:00:00")


def test_0010_fills_the_working_seconds_of_requests_attempted_or_closed_before_it(
    tmp_path: Path,
) -> None:
    """Migration 0010_callback_times: a request first attempted and closed before it gets
    its working seconds from the receiving body's hours; an untouched one keeps NULL."""
    path = tmp_path / "old.db"
    upgrade(sqlite_url(path), "0009_naming")
    untouched, untouched_transfer = uuid.uuid4().hex, uuid.uuid4().hex
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO api_keys (id, org, role, name, key_hash, key_prefix, created_at) "
            "VALUES (?, 'cqc', 'agent', 'desk', ?, 'hk_x', '2026-11-06 10:00:00.000000')",
            (KEY, "0" * 64),
        )
        for callback, transfer in ((CALLBACK, TRANSFER), (untouched, untouched_transfer)):
            db.execute(
                "INSERT INTO transfers (id, from_org, to_org, wait_started_at, "
                "wait_threshold_seconds, status, created_by_key_id, created_at) VALUES "
                "(?, 'cqc', 'lgsco', '2026-11-06 15:00:00.000000', 60, 'failed', ?, "
                "'2026-11-06 15:00:00.000000')",
                (transfer, KEY),
            )
            # Friday 6 November 2026, 15:00 UTC: an hour before LGSCO (10:00-16:00) closes.
            db.execute(
                "INSERT INTO callback_requests (id, transfer_id, from_org, to_org, reason, "
                "sender_reference, permission_to_share_at, mailbox, requested_at, "
                "created_by_key_id, created_at, first_attempt_due_at, close_due_at) "
                "VALUES (?, ?, 'cqc', 'lgsco', 'high_call_volume', 'CQC-1', "
                "'2026-11-06 15:00:00.000000', 'intake@lgo.org.uk', "
                "'2026-11-06 15:00:00.000000', ?, '2026-11-06 15:00:00.000000', "
                "'2026-11-09 13:00:00.000000', '2026-11-11 13:00:00.000000')",
                (callback, transfer, KEY),
            )
        # First attempted Monday 11:00 (1 + 1 working hours), closed Tuesday 10:30 (1 + 6 + 0.5).
        db.execute(
            "UPDATE callback_requests SET state = 'closed', outcome = 'reached', "
            "first_attempt_at = '2026-11-09 11:00:00.000000', "
            "closed_at = '2026-11-10 10:30:00.000000' WHERE id = ?",
            (CALLBACK,),
        )
    upgrade(sqlite_url(path))
    with sqlite3.connect(path) as db:
        rows = dict(
            (row[0], row[1:])
            for row in db.execute(
                "SELECT id, first_attempt_working_seconds, close_working_seconds "
                "FROM callback_requests"
            )
        )
    assert rows[CALLBACK] == (2 * 3600.0, 7.5 * 3600.0)
    assert rows[untouched] == (None, None)
