"""Migration 0014_signing over the previous release's data: each report published by one team
leader becomes a complete version signed by that leader's body, marked legacy; nothing else
the database holds is touched."""

import sqlite3
import uuid
from pathlib import Path

from app.core.migrate import upgrade
from tests.conftest import sqlite_url


def test_a_publication_of_the_previous_release_becomes_a_complete_legacy_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    upgrade(sqlite_url(path), "0013_feedback_times")
    key, publication = uuid.uuid4().hex, uuid.uuid4().hex
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO api_keys (id, org, role, name, key_hash, key_prefix, created_at) "
            "VALUES (?, 'lgsco', 'team_leader', 'lgsco intake team leader', ?, 'hk_x', "
            "'2026-10-01 10:00:00.000000')",
            (key, "0" * 64),
        )
        db.execute(
            "INSERT INTO report_publications (id, month, version, figures, fluctuation_note, "
            "due_date, on_time, published_at, published_by_key_id, published_by_org, "
            "published_by_name) VALUES (?, '2026-10', 1, '{}', 'A quiet month.', '2026-11-13', "
            "1, '2026-11-05 11:00:00.000000', ?, 'lgsco', 'lgsco intake team leader')",
            (publication, key),
        )
    upgrade(sqlite_url(path))
    with sqlite3.connect(path) as db:
        version = db.execute(
            "SELECT version, completed_at, legacy, on_time FROM report_publications"
        ).fetchall()
        signatures = db.execute(
            "SELECT publication_id, org, fluctuation_note, signed_at, signed_by_name "
            "FROM report_signatures"
        ).fetchall()
        roles = db.execute("SELECT role FROM api_keys").fetchall()
    assert [(v, c[:19], legacy, on_time) for v, c, legacy, on_time in version] == [
        (1, "2026-11-05 11:00:00", 1, 1)
    ]
    assert [(p, o, n, s[:19], who) for p, o, n, s, who in signatures] == [
        (publication, "lgsco", "A quiet month.", "2026-11-05 11:00:00", "lgsco intake team leader")
    ]
    assert roles == [("team_leader",)]
