"""docs/OPERATIONS.md stays true: its settings reference is generated from the Settings model,
and it covers every command and the topics an operator looks for."""

import re

import typer.main

from app import settings_doc
from app.cli import cli
from app.core.settings import Settings

DOC = settings_doc.DOCUMENT


def test_the_settings_reference_is_the_generated_one() -> None:
    current = DOC.read_text(encoding="utf-8")
    assert current == settings_doc.render(current), (
        "docs/OPERATIONS.md is out of date with app/core/settings.py: "
        "run `python -m app.settings_doc`"
    )
    assert settings_doc.main(["--check"]) == 0


def test_every_setting_and_serve_option_is_in_the_reference() -> None:
    text = DOC.read_text(encoding="utf-8")
    for name in Settings.model_fields:
        assert f"`HANDOFF_{name.upper()}`" in text
    for variable in ("HANDOFF_HOST", "HANDOFF_PORT", "HANDOFF_WORKERS", "PROMETHEUS_MULTIPROC_DIR"):
        assert f"`{variable}`" in text


def test_defaults_are_shown_the_same_on_every_machine() -> None:
    table = settings_doc.settings_table()
    assert str(settings_doc.PROJECT_ROOT) not in table
    assert "`<install dir>/email_templates`" in table


def test_the_check_fails_on_a_stale_document(tmp_path, monkeypatch) -> None:
    stale = tmp_path / "OPERATIONS.md"
    stale.write_text(f"# Ops\n{settings_doc.BEGIN}\n| old |\n{settings_doc.END}\n")
    monkeypatch.setattr(settings_doc, "DOCUMENT", stale)

    assert settings_doc.main(["--check"]) == 1
    assert settings_doc.main([]) == 0
    assert settings_doc.main(["--check"]) == 0
    assert "`HANDOFF_DATABASE_URL`" in stale.read_text()


def test_the_guide_covers_what_an_operator_looks_for() -> None:
    headings = re.findall(r"^#+ (.+)$", DOC.read_text(encoding="utf-8"), flags=re.MULTILINE)
    for topic in (
        "Deploying",
        "The command line",
        "Settings reference",
        "Logs",
        "Metrics",
        "Scaling",
        "More than one machine",
        "Backup and restore",
        "Runbook: a call back email is dead",
    ):
        assert topic in headings, topic


def test_every_command_is_in_the_guide() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The command line", 1)[1].split("\n## ", 1)[0]

    def walk(command: object, words: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            assert re.search(rf"handoff {' '.join(words)}\b.*\b{name}\b", section), (
                f"`handoff {' '.join([*words, name])}` is not in the command table"
            )
            walk(sub, [*words, name])

    walk(typer.main.get_command(cli), [])


def test_the_metrics_named_in_the_guide_exist() -> None:
    from prometheus_client.metrics import MetricWrapperBase

    from app.core import metrics
    from app.outbox import metrics as outbox_metrics

    text = DOC.read_text(encoding="utf-8")
    defined = {
        m._name
        for module in (metrics, outbox_metrics)
        for m in vars(module).values()
        if isinstance(m, MetricWrapperBase)
    }
    defined |= {"handoff_outbox_pending_messages", "handoff_outbox_oldest_pending_age_seconds"}
    # The call back gauges (app/callbacks/metrics.py, scraped in tests/test_metrics.py).
    defined |= {"handoff_callback_requests_open", "handoff_callback_requests_overdue"}
    named = set(re.findall(r"`(handoff_[a-z_]+)`", text))
    counters = {f"{name}_total" for name in defined}
    assert named <= defined | counters, named - defined - counters
    assert {n.removesuffix("_total") for n in named} >= defined
