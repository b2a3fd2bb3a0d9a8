"""`handoff`, as an operator's script uses it: help on every command, exit codes 0 / 1 / 2."""

import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import typer.main
from typer.testing import CliRunner

from app.cli import cli
from app.core.settings import get_settings
from tests.server import Server, clean_env, free_port, script
from tests.server import run as server_run

runner = CliRunner()


def commands() -> dict[str, object]:
    """Every command and command group by its words, found by walking the CLI (so that the
    ones added later are covered too)."""
    found: dict[str, object] = {}

    def walk(command: object, words: str) -> None:
        found[words] = command
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, f"{words} {name}".strip())

    walk(typer.main.get_command(cli), "")
    return found


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> Iterator[dict]:
    """The CLI's configuration, as an operator gives it: environment variables only."""
    values = {"HANDOFF_DATABASE_URL": database_url, "HANDOFF_EMAIL_DIR": str(tmp_path / "mail")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield values
    get_settings.cache_clear()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, list(args), catch_exceptions=False)


def test_the_operators_commands_are_there() -> None:
    names = set(commands())
    assert {"migrate", "serve", "keys create", "keys list", "keys revoke", "openapi export"} <= (
        names
    )


@pytest.mark.parametrize("words", commands(), ids=lambda words: words or "handoff")
def test_every_command_explains_itself(words: str) -> None:
    result = runner.invoke(cli, [*words.split(), "--help"], prog_name="handoff")

    assert result.exit_code == 0, result.output
    assert f"Usage: {' '.join(['handoff', *words.split()])}" in result.output
    description = getattr(commands()[words], "help", None) or ""
    assert len(description.split()) >= 3, f"'handoff {words}' has no description"
    assert description.split()[0] in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["no-such-command"],
        ["keys"],  # a group without its command
        ["keys", "create", "--org", "cqc", "--name", "desk"],  # --role missing
        ["keys", "create", "--org", "cqc", "--role", "boss", "--name", "desk"],
        ["keys", "revoke", "not-a-uuid"],
        ["serve", "--workers", "0"],
        ["serve", "--port", "eighty"],
        ["migrate", "--no-such-option"],
    ],
    ids=" ".join,
)
def test_wrong_usage_exits_2(args: list[str]) -> None:
    assert runner.invoke(cli, args).exit_code == 2


def test_keys_are_created_listed_and_revoked_with_exit_code_0(env: dict) -> None:
    created = run("keys", "create", "--org", "cqc", "--role", "agent", "--name", "desk 12")
    assert created.exit_code == 0, created.output
    key_id = re.search(r"id:\s+(\S+)", created.output).group(1)  # type: ignore[union-attr]
    secret = re.search(r"secret:\s+(\S+)", created.output).group(1)  # type: ignore[union-attr]

    listed = run("keys", "list", "--org", "cqc")
    assert listed.exit_code == 0
    assert key_id in listed.output and "desk 12" in listed.output and "active" in listed.output
    assert secret not in listed.output

    revoked = run("keys", "revoke", key_id)
    assert revoked.exit_code == 0
    assert "revoked" in run("keys", "list").output


def test_failures_exit_1_with_a_message(env: dict) -> None:
    unknown_body = runner.invoke(
        cli, ["keys", "create", "--org", "nhs", "--role", "agent", "--name", "x"]
    )
    assert unknown_body.exit_code == 1
    assert unknown_body.output.startswith("error:")

    no_such_key = runner.invoke(cli, ["keys", "revoke", str(uuid.uuid4())])
    assert no_such_key.exit_code == 1
    assert "error:" in no_such_key.output


def test_migrate_is_repeatable(env: dict) -> None:
    assert run("migrate").exit_code == 0
    again = run("migrate")
    assert again.exit_code == 0 and "head" in again.output


def test_openapi_export_writes_the_document(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    assert run("openapi", "export", "--output", str(target)).exit_code == 0
    assert '"openapi"' in target.read_text()


def handoff(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The installed console script, in a process of its own, as a shell script runs it."""
    script = Path(sys.executable).with_name("handoff")
    return subprocess.run(
        [str(script), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.database_independent
def test_the_console_script_exit_codes_hold_in_a_real_process(tmp_path: Path) -> None:
    """(Exit code 0 from the script is shown by the server tests' `handoff migrate`.)"""
    env = {"HANDOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"}
    assert handoff("keys", "create", "--org", "cqc", env=env).returncode == 2

    unreachable = {"HANDOFF_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:9/none"}
    failed = handoff("keys", "list", env=unreachable)
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        "error: could not connect (ConnectionRefusedError: Connect call failed ('127.0.0.1', 9))"
    ]


@pytest.mark.database_independent
def test_a_database_failure_prints_one_line_without_the_statement_or_its_values(
    tmp_path: Path,
) -> None:
    """A real fault: the schema is missing, so the INSERT fails with the statement and its
    parameters in the database error's message; the operator sees one line, none of that."""
    env = {"HANDOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/never-migrated.db"}
    failed = handoff(
        "keys", "create", "--org", "cqc", "--role", "agent", "--name", "Ada at desk 12", env=env
    )

    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        "error: the database refused the request or could not be reached (OperationalError)"
    ]
    assert failed.stdout == ""
    for leak in ("Traceback", "INSERT", "Ada at desk 12", "parameters", "hk_"):
        assert leak not in failed.stderr


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("k" * 101, "at most 100 characters"),
        ("desk\ufffe", "Unicode noncharacters"),
        ("desk\u202e21", "direction controls"),
        ("\u200b\u200b", "blank"),
    ],
    ids=["101 characters", "noncharacter", "bidi override", "invisible"],
)
def test_a_key_name_the_api_would_refuse_is_a_usage_error(env: dict, name: str, says: str) -> None:
    """The CLI keeps the API's rule for key names (100 characters, the column's length: on
    PostgreSQL a longer one used to fail inside the INSERT, printing its parameters)."""
    result = runner.invoke(
        cli, ["keys", "create", "--org", "cqc", "--role", "agent", f"--name={name}"]
    )

    assert result.exit_code == 2
    assert says in " ".join(result.output.replace("│", " ").split())
    assert "Traceback" not in result.output and "INSERT" not in result.output
    assert "active" not in run("keys", "list").output  # nothing was made
    longest = run("keys", "create", "--org", "cqc", "--role", "agent", "--name", "k" * 100)
    assert longest.exit_code == 0, longest.output


def test_keys_list_starts_with_a_header_row_over_its_columns(env: dict) -> None:
    run("keys", "create", "--org", "lgsco", "--role", "team_leader", "--name", "intake lead")

    header, row, *rest = run("keys", "list").output.splitlines()

    assert header.split() == ["ID", "BODY", "ROLE", "PREFIX", "STATE", "NAME"]
    assert rest == []
    for column, value in [("BODY", "lgsco"), ("ROLE", "team_leader"), ("STATE", "active")]:
        assert row.index(value) == header.index(column), (header, row)
    assert row[header.index("NAME") :] == "intake lead"
    assert re.fullmatch(r"[0-9a-f-]{36}", row[: header.index("BODY")].strip())


def test_body_names_are_accepted_in_any_case(env: dict) -> None:
    created = run("keys", "create", "--org", "CQC", "--role", "agent", "--name", "desk 3")
    assert created.exit_code == 0, created.output

    listed = run("keys", "list", "--org", "Cqc").output.splitlines()
    assert len(listed) == 2 and listed[1].split()[1] == "cqc"

    unknown = runner.invoke(cli, ["keys", "list", "--org", "NHS"])
    assert unknown.exit_code == 1
    assert unknown.output == "error: there is no body 'NHS'; the bodies are cqc, lgsco\n"


@pytest.mark.database_independent
def test_quickstart_on_a_busy_port_says_so_before_it_makes_anything(tmp_path: Path) -> None:
    env = clean_env()
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        done = subprocess.run(
            [script(), "quickstart", "--port", str(port)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert done.returncode == 1
    assert done.stderr == (
        f"error: 127.0.0.1:{port} is already in use (is handoff already running?). "
        "Stop what is using it, or choose another port with --port.\n"
    )
    assert "hk_" not in done.stdout
    assert list(tmp_path.iterdir()) == []  # no database, no key


def quickstart_once(tmp_path: Path, run_dir: Path) -> tuple[str, str]:
    """`handoff quickstart --port P` as a newcomer runs it: the key it prints, checked
    against the server it starts, and what it said; then it is stopped."""
    port = free_port()
    run_dir.mkdir()
    server = Server(
        [script(), "quickstart", "--port", str(port)], clean_env(), port, run_dir, cwd=tmp_path
    )
    try:
        server.wait_until_healthy()
        printed = server.stdout_path.read_text()
        secret = re.search(r"^  (hk_\S+)$", printed, flags=re.M).group(1)  # type: ignore[union-attr]
        assert f"curl -H 'Authorization: Bearer {secret}' http://127.0.0.1:{port}/v1/routes" in (
            printed
        )
        answer = httpx.get(
            f"{server.base_url}/v1/routes", headers={"Authorization": f"Bearer {secret}"}
        )
        assert answer.status_code == 200, answer.text
    finally:
        server.stop()
        server.kill_leftovers()
    return secret, printed


@pytest.mark.database_independent
def test_quickstart_serves_on_its_port_and_reuses_its_key_next_time(tmp_path: Path) -> None:
    first, said = quickstart_once(tmp_path, tmp_path / "run1")
    assert "A new CQC agent key (kept in var/quickstart-key for the next run)" in said
    key_file = tmp_path / "var" / "quickstart-key"
    assert key_file.read_text() == f"{first}\n"
    assert key_file.stat().st_mode & 0o777 == 0o600

    again, said = quickstart_once(tmp_path, tmp_path / "run2")
    assert again == first
    assert "Your CQC agent key from the last quickstart" in said
    listed = run_in(tmp_path, "keys", "list").splitlines()
    assert [line.split()[-1] for line in listed[1:]] == ["quickstart"]  # one key, not two

    # Once that key is revoked, the next run makes a new one (and keeps that instead).
    key_id = listed[1].split()[0]
    run_in(tmp_path, "keys", "revoke", key_id)
    third, said = quickstart_once(tmp_path, tmp_path / "run3")
    assert third != first and "A new CQC agent key" in said
    assert key_file.read_text() == f"{third}\n"


def run_in(cwd: Path, *args: str) -> str:
    return server_run([script(), *args], env=clean_env(), cwd=cwd)
