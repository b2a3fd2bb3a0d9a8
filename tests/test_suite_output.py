"""What the README's test command tells a newcomer whose machine has no browser: each skipped
test with its reason, one line saying the browser tests could not run and how to get the
browser, and pytest's closing "N passed, N skipped" line, also when they add `-q`."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
MISSING = "/nonexistent/chromium"
REASON = f"{MISSING} is not installed (apt-get install chromium)"


def pytest_run(*extra: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}  # in CI a missing browser fails
    env["HANDOFF_TEST_CHROMIUM"] = MISSING
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            *extra,
            "tests/test_api_docs_browser.py",
            "tests/test_cli.py::test_the_operators_commands_are_there",
        ],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.splitlines()


def skipped_test_lines() -> list[int]:
    """The line of each test function in the docs browser tests, where pytest says it skipped."""
    source = (PROJECT / "tests/test_api_docs_browser.py").read_text().splitlines()
    return [n for n, line in enumerate(source, 1) if line.startswith("async def test_")]


@pytest.mark.database_independent
@pytest.mark.parametrize("extra", [[], ["-q"]], ids=["as-in-the-readme", "with-q"])
def test_a_run_without_the_browser_names_each_skip_and_says_so_at_the_end(
    extra: list[str],
) -> None:
    lines = pytest_run(*extra)

    skips = [line for line in lines if line.startswith("SKIPPED")]
    where = "tests/test_api_docs_browser.py"
    assert skips == [f"SKIPPED [1] {where}:{n}: {REASON}" for n in skipped_test_lines()]
    assert lines[-2] == f"2 browser tests skipped: {REASON}"
    assert re.fullmatch(r"=* ?1 passed, 2 skipped in [\d.]+s ?=*", lines[-1]), lines[-1]
