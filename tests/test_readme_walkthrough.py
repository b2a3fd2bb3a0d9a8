"""The README's walk-through, run as a newcomer pastes it: its `sh` blocks, taken from
README.md itself (so the test breaks when the README does), run one after the other by bash
with `set -euo pipefail` against `handoff serve` in a process of its own, with its built-in
outbox worker. Every answer is checked, and so is every field the README shows of one."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import Server, clean_env, free_port, script

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## A transfer that fails into a call back request"
README_URL = "http://127.0.0.1:8000"
ON_ITS_WAY = {"pending", "sending"}
DELIVERY_SECONDS = 60  # how long the worker may take on a busy machine; not a speed check


def walkthrough_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    return re.findall(r"^```sh\n(.*?)^```$", section, flags=re.M | re.S)


def json_documents(text: str) -> list[Any]:
    """The JSON answers, one after another, that the walk-through's `answer` showed."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while (at := _skip_space(text, at)) < len(text):
        document, at = decoder.raw_decode(text, at)
        documents.append(document)
    return documents


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def shown_fields(blocks: list[str]) -> list[tuple[str, Any]]:
    """Each `"name": value` the README's `# …` answer lines show with a whole value."""
    comments = "\n".join(
        line for block in blocks for line in block.splitlines() if line.startswith("#")
    )
    found = []
    for name, value in re.findall(r'"(\w+)": ("[^"…]*"|-?\d+|true|false|null)(?=[,}\s])', comments):
        found.append((name, json.loads(value)))
    return found


def fields_of(document: Any) -> set[tuple[str, str]]:
    if isinstance(document, dict):
        pairs = {(k, json.dumps(v)) for k, v in document.items() if not isinstance(v, dict)}
        for value in document.values():
            pairs |= fields_of(value)
        return pairs
    return set()


@pytest.fixture
def curl() -> str:
    path = shutil.which("curl")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("curl is missing: the README's walk-through needs it")
        pytest.skip("curl is not installed (apt-get install curl)")
    return path


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Any:
    """`handoff serve` in a folder of its own, as after quickstart: emails in var/outbox."""
    port = free_port()
    env = clean_env(HANDOFF_DATABASE_URL=database_url)
    (tmp_path / "logs").mkdir()
    running = Server(
        [script(), "serve", "--port", str(port)], env, port, tmp_path / "logs", tmp_path
    )
    try:
        running.wait_until_healthy()
        yield running
    finally:
        running.stop()
        running.kill_leftovers()


def test_the_readme_walkthrough_runs_as_written(
    curl: str, server: Server, database_url: str, tmp_path: Path
) -> None:
    blocks = walkthrough_blocks()
    assert len(blocks) >= 4, "the walk-through's sh blocks were not found in README.md"
    walkthrough = "\n".join(blocks).replace(README_URL, server.base_url)
    # What the walk-through kept, for the checks below.
    walkthrough += '\nprintf "%s\\n" "$KEY" "$ID" "$CALLBACK_ID" > kept.txt\n'
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parents[1])  # its `.venv/bin/handoff`

    done = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + walkthrough],
        cwd=tmp_path,
        env=clean_env(HANDOFF_DATABASE_URL=database_url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}\n{server.logs()}"
    key, transfer_id, callback_id = (tmp_path / "kept.txt").read_text().splitlines()

    # The key it printed and kept.
    printed_key, callback_text = done.stdout.split("\n", 1)
    assert printed_key == key and key.startswith("hk_")

    # The transfer, then the failure that made the call back request: what `answer` showed.
    transfer, failed = json_documents(done.stderr)
    assert transfer["id"] == transfer_id
    assert (transfer["status"], transfer["to_org"], transfer["from_org"]) == (
        "waiting",
        "lgsco",
        "cqc",
    )
    assert transfer["dial"]["number"] == "0300 061 0614"
    assert transfer["wait_threshold_seconds"] == 60
    assert failed["id"] == transfer_id and failed["status"] == "failed"
    assert failed["failure_reason"] == "high_call_volume"
    assert failed["callback_request_id"] == callback_id

    # The call back request as the README's last block showed it.
    callback = json.loads(callback_text)
    assert callback["id"] == callback_id and callback["mailbox"] == "intake@lgo.org.uk"
    assert callback["caller"]["contact_number"] == "+447911123456"
    assert callback["delivery"]["status"] in ON_ITS_WAY | {"sent"}

    # The built-in worker sends it: what the README shows a moment later.
    deadline = time.monotonic() + DELIVERY_SECONDS
    headers = {"Authorization": f"Bearer {key}"}
    while callback["delivery"]["status"] in ON_ITS_WAY and time.monotonic() < deadline:
        time.sleep(0.2)
        callback = httpx.get(
            f"{server.base_url}/v1/callbacks/{callback_id}", headers=headers
        ).json()
    assert callback["delivery"]["status"] == "sent", callback
    emails = list((tmp_path / "var" / "outbox").glob("*.eml"))
    assert len(emails) == 1 and "To: intake@lgo.org.uk" in emails[0].read_text()

    # Every field the README shows of an answer is in the answers the server gave.
    answers = fields_of(transfer) | fields_of(failed) | fields_of(callback)
    shown = shown_fields(blocks)
    assert len(shown) >= 8
    missing = [(name, value) for name, value in shown if (name, json.dumps(value)) not in answers]
    assert missing == []
