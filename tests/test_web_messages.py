"""Plain words on the pages: every error code a page can show has a sentence that tells the
adviser what to do, and no page shows a code, a snake_case word or a quoted internal id.

The codes are found in the source, not listed here: every code a DomainError (or subclass) is
raised with, every PydanticCustomError, every code of the shared time rules, every code the page
forms file themselves, and every error type pydantic gives for the forms' request models. A new
code without a sentence fails `test_every_error_code_has_a_plain_sentence`."""

import ast
import html
import inspect
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import BaseModel, ValidationError

from app.callbacks.lifecycle_schemas import AttemptCreate, CallbackReturn
from app.core import errors, rules
from app.feedback.schemas import FeedbackCreate
from app.reports.schemas import PublishRequest
from app.signposts.schemas import SignpostCreate
from app.transfers.schemas import TransferCreate, TransferFail
from app.web.forms import Form
from app.web.messages import MESSAGES, say
from app.web.pages import environment
from tests.conftest import Key
from tests.test_web_advisers import dial, post_form, shown
from tests.test_web_reports import csrf, sign_in

APP = Path(__file__).resolve().parents[1] / "app"
SNAKE = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")
QUOTED_ID = re.compile(r"['\"‘’“”`][a-z0-9_.-]+['\"‘’“”`]")


def _domain_error_names() -> set[str]:
    names, todo = set(), [errors.DomainError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def _text(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def codes_in_source() -> set[str]:
    """Every stable code the app's source raises or files, read from its syntax tree."""
    raisers = _domain_error_names() | {"PydanticCustomError"}
    default = inspect.signature(rules.not_in_future).parameters["code"].default
    found = {default}
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            args = list(node.args)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in raisers and args:
                code = _text(args[0]) or _text(keywords.get("code"))
            elif name == "not_in_future":
                code = _text(args[4] if len(args) > 4 else keywords.get("code"))
            elif name == "error" and len(args) >= 2 and path.parent.name == "web":  # Form.error
                code = _text(args[1])
            else:
                code = None
            if code:
                found.add(code)
    return found


def _bad_payloads(model: type[BaseModel]) -> list[object]:
    """Inputs a form can send that each model refuses: nothing, blanks, wrong types, too long."""
    fields = model.model_fields
    return [
        {},
        dict.fromkeys(fields, ""),
        dict.fromkeys(fields, " "),
        dict.fromkeys(fields, "x" * 9000),
        dict.fromkeys(fields, ["x"] * 30),
        dict.fromkeys(fields, 12),
        {**dict.fromkeys(fields, "x"), "unexpected": "x"},
        {"case_references": [], "caller": {"contact_number": "12345"}},
    ]


def pydantic_codes() -> set[str]:
    found: set[str] = set()
    for model in (
        TransferCreate,
        TransferFail,
        SignpostCreate,
        FeedbackCreate,
        PublishRequest,
        AttemptCreate,
        CallbackReturn,
    ):
        for payload in _bad_payloads(model):
            try:
                model.model_validate(payload)
            except ValidationError as exc:
                found |= {str(e["type"]) for e in exc.errors()}
    return found


ALL_CODES = sorted(codes_in_source() | pydantic_codes())
CONTEXT = {
    "label": "the caller's contact number",
    "value": "07911 654321",
    "body": "LGSCO",
    "threshold": 60,
    "limit": "4,000",
}


def assert_plain(text: str, code: str) -> None:
    assert code not in text, (code, text)
    assert not SNAKE.search(text), (code, text)
    assert not QUOTED_ID.search(text), (code, text)
    assert "{" not in text and "}" not in text, (code, text)


def test_the_source_has_the_codes_the_issue_names() -> None:
    """The walk finds what it must: domain, validation, page and pydantic codes."""
    assert {
        "sender_reference_required",
        "invalid_phone_number",
        "timestamp_in_future",
        "permission_to_share_in_future",
        "invalid_time",
        "invalid_datetime",
        "string_too_short",
        "too_short",
        "blank",
        "invalid_characters",
    } <= set(ALL_CODES)


@pytest.mark.database_independent
@pytest.mark.parametrize("code", ALL_CODES)
def test_every_error_code_has_a_plain_sentence(code: str) -> None:
    assert code in MESSAGES, f"{code} has no sentence in app/web/messages.py"
    assert_plain(say(code, CONTEXT), code)
    assert_plain(say(code), code)  # with nothing to fill in, still plain

    # As a page shows it: in the error summary and beside the field.
    form = Form(
        values={"caller.contact_number": "07911 654321"},
        labels={"caller.contact_number": "the caller's contact number"},
    )
    form.error("caller.contact_number", code)
    form.error("", code)
    page = environment.from_string(
        '{% import "_forms.html" as f %}{{ f.error_summary(form) }}'
        '{{ f.error_message(form, "caller.contact_number") }}'
    ).render(form=form)
    assert f'data-code="{code}"' in page  # for support, in an attribute
    assert_plain(visible_text(page), code)


@pytest.mark.database_independent
def test_the_phone_sentence_names_the_number_and_what_to_do() -> None:
    form = Form(
        values={"caller.contact_number": "07911 654321"}, labels={"caller.contact_number": "x"}
    )
    form.error("caller.contact_number", "invalid_phone_number")
    assert form.errors["caller.contact_number"].message == (
        "07911 654321 is not a number in use in the UK. Check it with the caller"
    )
    abroad = Form(values={"n": "+1 202 555 01"}, labels={"n": "x"})
    abroad.error("n", "invalid_phone_number")
    assert (
        abroad.errors["n"].message
        == "+1 202 555 01 is not a number in use. Check it with the caller"
    )


def visible_text(page: str) -> str:
    """What a sighted reader sees: no tags, no attributes, no scripts, no hidden inputs."""
    page = re.sub(r"<(script|style|head)\b.*?</\1>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


async def test_no_page_shows_a_code(
    client: httpx.AsyncClient, cqc_agent: Key, lgsco_agent: Key, cqc_leader: Key
) -> None:
    """The pages an adviser and a team leader meet, wrong on purpose, in plain words only."""
    pages = [await client.get("/sign-in")]
    form = pages[0]
    pages.append(
        await shown(
            client,
            await client.post("/sign-in", data={"key": "hk_wrong", "csrf_token": csrf(form)}),
        )
    )
    await sign_in(client, lgsco_agent)
    pages.append(await client.get("/reports"))  # for team leaders only
    pages.append(await client.get("/transfer/00000000-0000-0000-0000-000000000000"))
    # A refused form answers 303 to its page (POST/redirect/GET), which shows the problems.
    pages.append(
        await shown(
            client,
            await dial(client, to_org="cqc", sender_reference="LG 9!", permission_time="25:99"),
        )
    )
    pages.append(
        await shown(
            client, await post_form(client, "/transfer/signpost", "/transfer", to_org="lgsco")
        )
    )
    started = await dial(client, to_org="cqc", topic="other")
    path = started.headers["location"]
    busy = await client.get(f"{path}?busy=true")
    pages.append(busy)
    pages.append(
        await shown(
            client,
            await client.post(
                f"{path}/callback",
                data={"csrf_token": csrf(busy), "reason": "wait_threshold_exceeded"},
            ),
        )
    )
    pages.append(
        await shown(
            client,
            await client.post(
                f"{path}/callback",
                data={
                    "csrf_token": csrf(busy),
                    "reason": "high_call_volume",
                    "caller.contact_number": "07911 654321",
                },
            ),
        )
    )
    pages.append(
        await shown(
            client,
            await post_form(
                client,
                "/feedback/new",
                "/feedback/new",
                case_references="A B!",
                correct_advice="=?",
                occurred_at="2030-01-01T10:00",
            ),
        )
    )
    client.cookies.clear()
    await sign_in(client, cqc_leader)
    pages.append(await client.get("/reports"))
    pages.append(await client.get("/reports/2026-09"))
    report = await client.get("/reports/2026-10")
    pages.append(
        await shown(
            client,
            await client.post(
                "/reports/2026-10/publish",
                data={"csrf_token": csrf(report), "fluctuation_note": " "},
            ),
        )
    )
    pages.append(await client.get("/reports/2026-10?version=3"))
    for page in pages:
        assert page.headers["content-type"].startswith("text/html"), page.text
        text = visible_text(page.text)
        assert not SNAKE.search(text), (page.url, SNAKE.findall(text))
        assert not QUOTED_ID.search(text), (page.url, QUOTED_ID.findall(text))
        for code in ALL_CODES:
            if "_" in code:
                assert code not in text, (page.url, code)
