"""docs/SECURITY.md names the test behind each promise: every test it names must exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "SECURITY.md"


def named_tests() -> list[tuple[str, str | None]]:
    """(file, test) pairs in the order the document names them; `::name` alone belongs to the
    file named last before it."""
    found: list[tuple[str, str | None]] = []
    current = None
    for match in re.finditer(r"(tests/\w+\.py)|::(\w+)", DOC.read_text(encoding="utf-8")):
        if match.group(1):
            current = match.group(1)
            found.append((current, None))
        else:
            assert current, f"::{match.group(2)} before any test file"
            found.append((current, match.group(2)))
    return found


def test_every_test_the_security_document_names_exists() -> None:
    named = named_tests()
    assert len([n for n in named if n[1]]) >= 20
    for file, test in named:
        path = ROOT / file
        assert path.is_file(), file
        if test is not None:
            assert re.search(rf"def {test}\(", path.read_text(encoding="utf-8")), (file, test)
