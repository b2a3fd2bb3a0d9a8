"""The operator's key commands, and UK calendar months."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.core.months import Month

ROOT = Path(__file__).resolve().parents[1]


def handoff(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HANDOFF_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_keys_create_list_revoke(database_url: str) -> None:
    created = handoff(
        "keys",
        "create",
        "--org",
        "cqc",
        "--role",
        "agent",
        "--name",
        "desk 12",
        database_url=database_url,
    )
    assert created.returncode == 0, created.stderr
    secret = next(
        line.split()[1] for line in created.stdout.splitlines() if line.startswith("secret:")
    )
    key_id = next(line.split()[1] for line in created.stdout.splitlines() if line.startswith("id:"))
    assert secret.startswith("hk_")

    listed = handoff("keys", "list", database_url=database_url)
    assert listed.returncode == 0
    assert "desk 12" in listed.stdout and "active" in listed.stdout
    assert secret not in listed.stdout

    assert handoff("keys", "revoke", key_id, database_url=database_url).returncode == 0
    assert "revoked" in handoff("keys", "list", database_url=database_url).stdout

    unknown = handoff(
        "keys",
        "create",
        "--org",
        "nhs",
        "--role",
        "agent",
        "--name",
        "x",
        database_url=database_url,
    )
    assert unknown.returncode == 1 and "nhs" in unknown.stderr
    bad_role = handoff(
        "keys", "create", "--org", "cqc", "--role", "boss", "--name", "x", database_url=database_url
    )
    assert bad_role.returncode == 2


@pytest.mark.parametrize(
    ("moment", "month"),
    [
        (datetime(2026, 5, 31, 23, 30, tzinfo=UTC), "2026-06"),  # BST: already 1 June
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "2026-12"),  # GMT: still 31 December
        (datetime(2026, 10, 31, 23, 59, tzinfo=UTC), "2026-10"),
    ],
)
def test_a_moment_belongs_to_its_uk_month(moment: datetime, month: str) -> None:
    assert str(Month.containing(moment)) == month


def test_month_ranges_follow_uk_time() -> None:
    start, end = Month.parse("2026-06").utc_range()
    assert start == datetime(2026, 5, 31, 23, 0, tzinfo=UTC)
    assert end == datetime(2026, 6, 30, 23, 0, tzinfo=UTC)
    assert Month.parse("2026-01").previous() == Month(2025, 12)
    assert Month.parse("2026-12").next() == Month(2027, 1)
