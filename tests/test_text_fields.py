"""Every text field of every request, as a careful tester fills it: characters no field
accepts, values that show nothing, direction controls, references written with spaces,
phone numbers as people type them, times that are numbers, and limits that agree with the
columns the values are stored in."""

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Column, String

import app.main  # noqa: F401 - imports every request model
from app.callbacks.models import CallbackRequest, CallerDetails
from app.core.auth import Role
from app.core.clock import FixedClock
from app.core.months import MONTH_PATTERN
from app.core.validation import REFERENCE_MAX_LENGTH, REFERENCE_PATTERN, RequestModel
from app.feedback.models import Feedback
from app.keys.models import ApiKey
from app.reports.models import ReportPublication, ReportSignature
from app.signposts.models import Signpost
from app.transfers.models import Transfer
from tests.conftest import Key, Keys
from tests.helpers import CALLER, FEEDBACK, assert_problem, failure, to_lgsco
from tests.test_web_advisers import FEEDBACK as FEEDBACK_FORM
from tests.test_web_advisers import FEEDBACK_PATH, post_form, start_to_lgsco
from tests.test_web_reports import sign_in

OPENAPI = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


# ---- The request models' text fields, found by walking the models ----------------------------


def request_models() -> Iterator[type[RequestModel]]:
    seen: set[type] = set()
    todo = list(RequestModel.__subclasses__())
    while todo:
        model = todo.pop()
        if model not in seen:
            seen.add(model)
            todo.extend(model.__subclasses__())
            yield model


def _string_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The string schema a property takes (through `anyOf` with null, or a list's items);
    None for anything that is not free text (numbers, enums, constants, date-times, objects)."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "array":
            option = option["items"]
        if option.get("type") == "string" and not ({"enum", "const", "format"} & option.keys()):
            return option
    return None


def string_fields() -> dict[str, dict[str, Any]]:
    """'Model.field' -> its string schema, for every free-text field of every request model."""
    found = {}
    for model in request_models():
        for name, schema in model.model_json_schema()["properties"].items():
            string = _string_schema(schema)
            if string is not None:
                found[f"{model.__name__}.{name}"] = string
    return found


# ---- How a tester sends each text field -------------------------------------------------------

Send = Callable[[httpx.AsyncClient, "People", Any], Awaitable[httpx.Response]]


class People:
    def __init__(self, keys: Keys, clock: FixedClock) -> None:
        self.keys, self.clock = keys, clock
        self._made: dict[str, Key] = {}

    async def key(self, role: Role) -> Key:
        if role.value not in self._made:
            self._made[role.value] = await self.keys.make("cqc", role, f"cqc {role.value}")
        return self._made[role.value]


async def post(client: httpx.AsyncClient, url: str, body: Any, key: Key) -> httpx.Response:
    # json.dumps escapes a lone surrogate as "\ud800", as any client's JSON can carry one.
    return await client.post(
        url,
        content=json.dumps(body).encode(),
        headers={**key.headers, "Content-Type": "application/json"},
    )


async def _failed(client: httpx.AsyncClient, people: People, **change: Any) -> httpx.Response:
    agent = await people.key(Role.agent)
    started = await post(client, "/v1/transfers", to_lgsco(people.clock.now()), agent)
    assert started.status_code == 201, started.text
    return await post(
        client,
        f"/v1/transfers/{started.json()['id']}/failed",
        failure("high_call_volume", **change),
        agent,
    )


def _caller(field: str) -> Send:
    return lambda client, people, v: _failed(client, people, caller={**CALLER, field: v})


async def _failed_reference(client: httpx.AsyncClient, people: People, v: Any) -> httpx.Response:
    return await _failed(client, people, sender_reference=v)


async def _transfer_reference(client: httpx.AsyncClient, people: People, v: Any) -> httpx.Response:
    body = to_lgsco(people.clock.now(), sender_reference=v)
    return await post(client, "/v1/transfers", body, await people.key(Role.agent))


async def _outcome_reference(client: httpx.AsyncClient, people: People, v: Any) -> httpx.Response:
    outcome = {"status": "failed", **failure(sender_reference=v)}
    body = to_lgsco(people.clock.now(), outcome=outcome)
    return await post(client, "/v1/transfers", body, await people.key(Role.agent))


async def _signpost_reference(client: httpx.AsyncClient, people: People, v: Any) -> httpx.Response:
    body = {"to_org": "lgsco", "sender_reference": v}
    return await post(client, "/v1/signposts", body, await people.key(Role.agent))


def _feedback(field: str) -> Send:
    async def send(client: httpx.AsyncClient, people: People, v: Any) -> httpx.Response:
        value = [v] if field == "case_references" else v
        body = {**FEEDBACK, field: value}
        return await post(client, "/v1/feedback", body, await people.key(Role.agent))

    return send


async def _remedial_action(client: httpx.AsyncClient, people: People, v: Any) -> httpx.Response:
    """A CQC feedback about LGSCO, answered by an LGSCO adviser with `v`."""
    made = await post(client, "/v1/feedback", FEEDBACK, await people.key(Role.agent))
    assert made.status_code == 201, made.text
    lgsco = await people.keys.make("lgsco", Role.agent, "lgsco agent")
    url = f"/v1/feedback/{made.json()['id']}/response"
    return await post(client, url, {"remedial_action": v, "training_issue": False}, lgsco)


async def _key_name(client: httpx.AsyncClient, people: People, v: Any) -> httpx.Response:
    body = {"role": "agent", "name": v}
    return await post(client, "/v1/keys", body, await people.key(Role.admin))


async def _note(client: httpx.AsyncClient, people: People, v: Any) -> httpx.Response:
    url = "/v1/reports/contact-volumes/2026-10/publish"
    return await post(client, url, {"fluctuation_note": v}, await people.key(Role.team_leader))


async def _signed_note(client: httpx.AsyncClient, people: People, v: Any) -> httpx.Response:
    url = "/v1/reports/contact-volumes/2026-10/sign"
    return await post(client, url, {"fluctuation_note": v}, await people.key(Role.team_leader))


# 'Model.field' -> (how to send it, the field the problem names, single line?)
TEXT_FIELDS: dict[str, tuple[Send, str, bool]] = {
    "Caller.name": (_caller("name"), "caller.name", True),
    "Caller.contact_number": (_caller("contact_number"), "caller.contact_number", True),
    "Caller.provider": (_caller("provider"), "caller.provider", True),
    "TransferCreate.sender_reference": (_transfer_reference, "sender_reference", True),
    "TransferFail.sender_reference": (_failed_reference, "sender_reference", True),
    "FailedOutcome.sender_reference": (_outcome_reference, "outcome.failed.sender_reference", True),
    "SignpostCreate.sender_reference": (_signpost_reference, "sender_reference", True),
    "FeedbackCreate.case_references": (
        _feedback("case_references"),
        "case_references.0",
        True,
    ),
    "FeedbackCreate.reason_for_contact": (
        _feedback("reason_for_contact"),
        "reason_for_contact",
        False,
    ),
    "FeedbackCreate.names_and_times": (_feedback("names_and_times"), "names_and_times", False),
    "FeedbackCreate.correct_advice": (_feedback("correct_advice"), "correct_advice", False),
    "FeedbackCreate.suggested_action": (
        _feedback("suggested_action"),
        "suggested_action",
        False,
    ),
    "FeedbackResponse.remedial_action": (_remedial_action, "remedial_action", False),
    "KeyCreate.name": (_key_name, "name", True),
    "PublishRequest.fluctuation_note": (_note, "fluctuation_note", False),
    "SignRequest.fluctuation_note": (_signed_note, "fluctuation_note", False),
}
# Names looked up in the route table (a body, an IVR topic): anything else is refused as
# unknown (`no_route`, `unknown_topic`), so no text of theirs is ever stored as typed.
IDENTIFIERS = {"TransferCreate.to_org", "TransferCreate.topic", "SignpostCreate.to_org"}
IDENTIFIERS |= {"FeedbackCreate.about_org"}
# Contact reasons are codes from the route table too (`unknown_contact_reason`).
IDENTIFIERS |= {"TransferCreate.contact_reason", "SignpostCreate.contact_reason"}
SINGLE_LINE = [name for name, (_, _, single) in TEXT_FIELDS.items() if single]


@pytest.fixture
def people(key_factory: Keys, clock: FixedClock) -> People:
    return People(key_factory, clock)


@pytest.mark.database_independent
def test_every_text_field_of_every_request_is_tried_here() -> None:
    assert set(string_fields()) == set(TEXT_FIELDS) | IDENTIFIERS


NONCHARACTERS = ["\ufffe", "\uffff", "\ufdd0", "\ufdef", "\U0001fffe", "\U0010ffff"]
NEVER_ACCEPTED = [*NONCHARACTERS, "\ud800", "\udfff", "\x00", "\x1b", "\x7f", "\x85", "\u2028"]


@pytest.mark.parametrize("field", TEXT_FIELDS)
async def test_noncharacters_and_lone_surrogates_are_refused_in_every_text_field(
    client: httpx.AsyncClient, people: People, field: str
) -> None:
    send, path, _ = TEXT_FIELDS[field]
    for ch in NEVER_ACCEPTED:
        value = f"07911 123456{ch}" if field == "Caller.contact_number" else f"Ada{ch}1"
        body = assert_problem(await send(client, people, value), 422, "invalid_characters")
        assert [e["field"] for e in body["errors"]] == [path], (ascii(ch), body)


INVISIBLE = ["\u200b\u200b", "\u200d", "\ufeff ", "\u2060\u00ad", "\u3164", "\u180e", " \u200c "]


@pytest.mark.parametrize("field", TEXT_FIELDS)
async def test_a_value_made_only_of_invisible_characters_is_blank(
    client: httpx.AsyncClient, people: People, field: str
) -> None:
    send, path, _ = TEXT_FIELDS[field]
    # A reference has an alphabet of its own, which no invisible character is in (an empty
    # one was always `invalid_reference`).
    expected = "invalid_reference" if "reference" in field else "blank"
    for value in INVISIBLE:
        body = assert_problem(await send(client, people, value), 422, expected)
        assert [e["field"] for e in body["errors"]] == [path], (ascii(value), body)


DIRECTION_CONTROLS = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]


@pytest.mark.parametrize("field", TEXT_FIELDS)
async def test_direction_controls_are_refused_in_single_line_fields_only(
    client: httpx.AsyncClient, people: People, field: str
) -> None:
    send, path, single_line = TEXT_FIELDS[field]
    for ch in DIRECTION_CONTROLS:
        # "Ada" shown as "adA" by a right-to-left override, or a reference reordered.
        value = f"07911 {ch}123456" if field == "Caller.contact_number" else f"Ada{ch}1"
        response = await send(client, people, value)
        if single_line:
            body = assert_problem(response, 422, "invalid_characters")
            assert [e["field"] for e in body["errors"]] == [path], (ascii(ch), body)
        else:  # free text may quote right-to-left writing
            assert response.status_code in (200, 201), response.text
            if field in ("PublishRequest.fluctuation_note", "SignRequest.fluctuation_note"):
                return  # published once; the next would be a new version of the same note


# ---- Limits agree with the columns -------------------------------------------------------------

E164_MAX = 16  # "+" and at most 15 digits (ITU-T E.164)
COLUMNS: dict[str, list[Column[Any]]] = {
    "Caller.name": [CallerDetails.__table__.c.name],
    "Caller.provider": [CallerDetails.__table__.c.provider],
    "Caller.contact_number": [CallerDetails.__table__.c.contact_number],  # stored as E.164
    "TransferCreate.sender_reference": [Transfer.__table__.c.sender_reference],
    "TransferCreate.to_org": [Transfer.__table__.c.to_org],
    "TransferCreate.topic": [Transfer.__table__.c.topic],
    "TransferFail.sender_reference": [
        Transfer.__table__.c.sender_reference,
        CallbackRequest.__table__.c.sender_reference,
    ],
    "FailedOutcome.sender_reference": [
        Transfer.__table__.c.sender_reference,
        CallbackRequest.__table__.c.sender_reference,
    ],
    "SignpostCreate.to_org": [Signpost.__table__.c.to_org],
    "SignpostCreate.sender_reference": [Signpost.__table__.c.sender_reference],
    "TransferCreate.contact_reason": [Transfer.__table__.c.contact_reason],
    "SignpostCreate.contact_reason": [Signpost.__table__.c.contact_reason],
    "FeedbackCreate.about_org": [Feedback.__table__.c.about_org],
    "FeedbackCreate.case_references": [Feedback.__table__.c.case_references],  # a JSON list
    "FeedbackCreate.reason_for_contact": [Feedback.__table__.c.reason_for_contact],
    "FeedbackCreate.names_and_times": [Feedback.__table__.c.names_and_times],
    "FeedbackCreate.correct_advice": [Feedback.__table__.c.correct_advice],
    "FeedbackCreate.suggested_action": [Feedback.__table__.c.suggested_action],
    "FeedbackResponse.remedial_action": [Feedback.__table__.c.remedial_action],
    # A key's name is also copied into each report it publishes.
    "KeyCreate.name": [ApiKey.__table__.c.name, ReportPublication.__table__.c.published_by_name],
    "PublishRequest.fluctuation_note": [ReportPublication.__table__.c.fluctuation_note],
    "SignRequest.fluctuation_note": [
        ReportPublication.__table__.c.fluctuation_note,
        ReportSignature.__table__.c.fluctuation_note,
    ],
}


@pytest.mark.database_independent
def test_every_request_string_limit_fits_the_columns_it_is_stored_in() -> None:
    fields = string_fields()
    assert set(fields) == set(COLUMNS)
    for name, schema in fields.items():
        limit = schema.get("maxLength")
        assert limit is not None, f"{name} has no maxLength"
        stored = E164_MAX if name == "Caller.contact_number" else limit
        for column in COLUMNS[name]:
            length = getattr(column.type, "length", None)
            if isinstance(column.type, String) and length is not None:
                assert stored <= length, f"{name} allows {stored}, {column} holds {length}"


@pytest.mark.parametrize("length", [100, 101, 200])
async def test_a_key_name_longer_than_its_column_is_refused_not_a_server_error(
    client: httpx.AsyncClient, people: People, length: int
) -> None:
    response = await _key_name(client, people, "k" * length)
    if length <= 100:
        assert response.status_code == 201, response.text
        assert response.json()["name"] == "k" * length
    else:  # PostgreSQL answered 500 (value too long for type character varying(100))
        body = assert_problem(response, 422, "validation_error")
        assert [(e["field"], e["code"]) for e in body["errors"]] == [("name", "string_too_long")]


# ---- References with spaces --------------------------------------------------------------------


async def test_references_written_with_spaces_are_kept_whole_everywhere(
    client: httpx.AsyncClient, people: People
) -> None:
    agent = await people.key(Role.agent)
    signpost = await _signpost_reference(client, people, " 22 001 234 ")
    assert signpost.status_code == 201, signpost.text
    assert signpost.json()["sender_reference"] == "22 001 234"

    feedback = await _feedback("case_references")(client, people, "22 001 234")
    assert feedback.status_code == 201, feedback.text
    assert feedback.json()["case_references"] == ["22 001 234"]

    failed = await _failed_reference(client, people, "LG 22/001 234")
    assert failed.status_code == 200, failed.text
    callback = await client.get(
        f"/v1/callbacks/{failed.json()['callback_request_id']}", headers=agent.headers
    )
    assert callback.json()["sender_reference"] == "LG 22/001 234"


async def test_the_feedback_form_splits_references_on_commas_semicolons_and_line_breaks(
    client: httpx.AsyncClient, cqc_agent: Key
) -> None:
    await sign_in(client, cqc_agent)
    typed = "22 001 234, CQC-1001;LG 7/2026\r\n  CAS 9 ,, ;"
    sent = await post_form(
        client, "/feedback/new", "/feedback/new", **{**FEEDBACK_FORM, "case_references": typed}
    )
    assert sent.status_code == 303, sent.text
    match = FEEDBACK_PATH.match(sent.headers["location"])
    assert match
    stored = await client.get(f"/v1/feedback/{match.group(1)}", headers=cqc_agent.headers)
    assert stored.json()["case_references"] == ["22 001 234", "CQC-1001", "LG 7/2026", "CAS 9"]


async def test_the_transfer_form_takes_a_reference_with_spaces(
    client: httpx.AsyncClient, cqc_agent: Key
) -> None:
    await sign_in(client, cqc_agent)
    path = await start_to_lgsco(client, sender_reference="CQC 2026 001", permission_time="09:59")
    transfer_id = path.rsplit("/", 1)[1]
    stored = await client.get(f"/v1/transfers/{transfer_id}", headers=cqc_agent.headers)
    assert stored.json()["sender_reference"] == "CQC 2026 001"


# ---- Phone numbers as people type them ------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    [
        "07911 123456",
        "07911123456",
        "(07911) 123 456",
        "07911-123-456",
        "+44 7911 123456",
        "+447911123456",
        "+44 (0)7911 123456",
        "+44 (0) 7911 123456",
        "0044 7911 123456",
        "0044 (0)7911 123456",
        "00 44 7911 123 456",
        "07911\u00a0123456",  # pasted from an email with a no-break space
    ],
)
async def test_a_uk_mobile_number_is_accepted_as_people_type_it(
    client: httpx.AsyncClient, people: People, typed: str
) -> None:
    failed = await _caller("contact_number")(client, people, typed)
    assert failed.status_code == 200, failed.text
    agent = await people.key(Role.agent)
    callback = await client.get(
        f"/v1/callbacks/{failed.json()['callback_request_id']}", headers=agent.headers
    )
    assert callback.json()["caller"]["contact_number"] == "+447911123456"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [("(020) 7946 0958", "+442079460958"), ("+44 (0)20 7946 0958", "+442079460958")],
)
async def test_a_landline_is_accepted_with_brackets_and_a_leading_0_in_brackets(
    client: httpx.AsyncClient, people: People, typed: str, stored: str
) -> None:
    failed = await _caller("contact_number")(client, people, typed)
    assert failed.status_code == 200, failed.text
    agent = await people.key(Role.agent)
    callback = await client.get(
        f"/v1/callbacks/{failed.json()['callback_request_id']}", headers=agent.headers
    )
    assert callback.json()["caller"]["contact_number"] == stored


@pytest.mark.parametrize(
    "typed",
    ["07911 654321", "+44 7911 654321", "0044 (0)7911 654321", "0044 12", "+1 555"],
)
async def test_a_number_not_in_use_is_still_refused(
    client: httpx.AsyncClient, people: People, typed: str
) -> None:
    body = assert_problem(
        await _caller("contact_number")(client, people, typed), 422, "invalid_phone_number"
    )
    assert [e["field"] for e in body["errors"]] == ["caller.contact_number"]


# ---- Times are ISO 8601 strings, never numbers ---------------------------------------------------

NOT_TIMES = [0, 0.5, 1700000000, "0", "0.5", "1700000000", True]


@pytest.mark.parametrize("value", NOT_TIMES, ids=repr)
async def test_a_number_is_never_read_as_a_time(
    client: httpx.AsyncClient, people: People, value: Any
) -> None:
    agent = await people.key(Role.agent)
    for url, body, field in [
        ("/v1/signposts", {"to_org": "lgsco", "signposted_at": value}, "signposted_at"),
        ("/v1/transfers", to_lgsco(people.clock.now(), wait_started_at=value), "wait_started_at"),
        ("/v1/feedback", {**FEEDBACK, "occurred_at": value}, "occurred_at"),
    ]:
        problem = assert_problem(await post(client, url, body, agent), 422, "invalid_datetime")
        assert [e["field"] for e in problem["errors"]] == [field]
    admin = await people.key(Role.admin)
    for name in ("since", "until"):
        response = await client.get("/v1/audit", params={name: value}, headers=admin.headers)
        problem = assert_problem(response, 422, "invalid_datetime")
        assert [e["field"] for e in problem["errors"]] == [name]


async def test_an_iso_8601_time_with_an_offset_is_still_accepted(
    client: httpx.AsyncClient, people: People
) -> None:
    agent = await people.key(Role.agent)
    signpost = await post(
        client,
        "/v1/signposts",
        {"to_org": "lgsco", "signposted_at": "2026-11-10T09:30:00+00:00"},
        agent,
    )
    assert signpost.status_code == 201, signpost.text
    assert signpost.json()["signposted_at"] == "2026-11-10T09:30:00Z"
    naive = await post(
        client, "/v1/signposts", {"to_org": "lgsco", "signposted_at": "2026-11-10T09:30"}, agent
    )
    assert_problem(naive, 422, "naive_datetime")


# ---- The document states each field's real constraints -------------------------------------


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _request_strings(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every string a client may send: parameters and request body properties, by place."""

    def walk(place: str, schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        schema = _resolve(document, schema)
        for option in schema.get("anyOf", []) + schema.get("oneOf", []):
            yield from walk(place, option)
        if schema.get("type") == "string":
            yield place, schema
        if schema.get("type") == "array":
            yield from walk(f"{place}[]", schema["items"])
        for name, sub in schema.get("properties", {}).items():
            yield from walk(f"{place}.{name}", sub)

    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                yield from walk(f"{where} {parameter['name']}", parameter["schema"])
            for media in operation.get("requestBody", {}).get("content", {}).values():
                yield from walk(f"{where} body", media["schema"])


def test_the_document_gives_every_string_a_client_sends_its_real_constraints() -> None:
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    seen = dict(_request_strings(document))
    for place, schema in seen.items():
        if {"enum", "const", "format"} & schema.keys():
            continue
        # Or a pattern that bounds the length (Idempotency-Key's `^[\x20-\x7e]{1,255}$`).
        bounded = re.search(r"\{\d+,\d+\}\$$", schema.get("pattern", ""))
        assert "maxLength" in schema or bounded, f"{place} has no maxLength"
        name = re.split(r"[ .]", place.removesuffix("[]"))[-1]
        if "reference" in name:
            assert schema["pattern"] == REFERENCE_PATTERN, place
            assert schema["maxLength"] == REFERENCE_MAX_LENGTH, place
        if name == "month":
            assert schema["pattern"] == MONTH_PATTERN and schema["maxLength"] == 7, place
    assert any("case_references[]" in place for place in seen)
    assert sum(place.endswith(" month") for place in seen) >= 5
    for place, schema in seen.items():
        if place.rsplit(" ", 1)[-1] in ("since", "until") or place.endswith("_at"):
            assert schema.get("format") == "date-time", place
