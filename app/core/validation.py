"""Field types shared by request models. Each failure has a stable error code."""

import functools
import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import phonenumbers
import regex
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field
from pydantic import BaseModel as _BaseModel
from pydantic_core import PydanticCustomError


class RequestModel(_BaseModel):
    """Request bodies refuse fields they do not know."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(_BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Characters no text field accepts. Cc: C0/C1 controls incl. CR, LF, TAB; Zl/Zp: U+2028/U+2029;
# Cs: lone surrogates; Noncharacter_Code_Point: U+FDD0-U+FDEF and U+nFFFE/U+nFFFF, which XML
# (so XLSX) refuses and which Unicode reserves for a program's internal use.
_NEVER = regex.compile(r"[\p{Cc}\p{Zl}\p{Zp}\p{Cs}\p{Noncharacter_Code_Point}]")
# Bidirectional embedding, override and isolate controls reorder what a reader sees around them
# (a name or reference shown backwards); refused where there is only one line.
_BIDI_CONTROLS = regex.compile(r"[\u202a-\u202e\u2066-\u2069]")
# A value made of these alone shows nothing: it is blank. White_Space and
# Default_Ignorable_Code_Point (zero-width spaces and joiners, word joiner, BOM, soft hyphen,
# variation selectors, Hangul fillers, tags, ...), plus U+2800 BRAILLE PATTERN BLANK.
_INVISIBLE = regex.compile(r"[\p{White_Space}\p{Default_Ignorable_Code_Point}\u2800]*")


def _has_forbidden_character(value: str, *, multi_line: bool) -> bool:
    if "=?" in value:  # an RFC 2047 encoded-word could be decoded into something else by a reader
        return True
    if not multi_line and _BIDI_CONTROLS.search(value):
        return True
    return _NEVER.search(value.replace("\n", "") if multi_line else value) is not None


def _characters(value: object, *, multi_line: bool) -> object:
    # Before the string is validated, so that a lone surrogate (which JSON can carry as an
    # escape) is refused with the same code as any other character that is never accepted.
    if not isinstance(value, str):
        return value
    if multi_line:
        value = value.replace("\r\n", "\n")
    if _has_forbidden_character(value, multi_line=multi_line):
        allowed = " (other than line breaks)" if multi_line else ", line breaks, direction controls"
        raise PydanticCustomError(
            "invalid_characters",
            f"must not contain control characters{allowed}, Unicode noncharacters or '=?'",
        )
    return value


def _visible(value: str) -> str:
    if _INVISIBLE.fullmatch(value):
        raise PydanticCustomError("blank", "must not be blank")
    return value.strip()


_SingleLine = (
    BeforeValidator(functools.partial(_characters, multi_line=False)),
    AfterValidator(_visible),
)
_MultiLine = (
    BeforeValidator(functools.partial(_characters, multi_line=True)),
    AfterValidator(_visible),
)

CallerName = Annotated[str, Field(min_length=1, max_length=100), *_SingleLine]
ProviderName = Annotated[str, Field(min_length=1, max_length=200), *_SingleLine]
KeyName = Annotated[str, Field(min_length=1, max_length=100, examples=["desk 12"]), *_SingleLine]
LongText = Annotated[str, Field(min_length=1, max_length=4000), *_MultiLine]

REFERENCE_MAX_LENGTH = 32
# Letters, digits, '-' and '/', in words separated by single spaces ("22 001 234").
REFERENCE_PATTERN = r"^[A-Za-z0-9/-]+( [A-Za-z0-9/-]+)*$"
_REFERENCE = re.compile(REFERENCE_PATTERN)


def _reference(value: str) -> str:
    value = value.strip(" ")
    if len(value) > REFERENCE_MAX_LENGTH or not _REFERENCE.fullmatch(value):
        raise PydanticCustomError(
            "invalid_reference",
            "must be 1-32 letters, digits, '-', '/' or single spaces between them",
        )
    return value


def split_references(text: str) -> list[str]:
    """References as typed in one box: separated by commas, semicolons or line breaks (not by
    spaces, which may be part of a reference such as "22 001 234")."""
    return [part.strip() for part in re.split(r"[,;\r\n]+", text) if part.strip()]


Reference = Annotated[
    str,
    # The document states the rule (`_reference` enforces it, with its own code); surrounding
    # spaces are trimmed before the check.
    Field(
        examples=["CAS-123/45"],
        json_schema_extra={
            "minLength": 1,
            "maxLength": REFERENCE_MAX_LENGTH,
            "pattern": REFERENCE_PATTERN,
        },
    ),
    BeforeValidator(functools.partial(_characters, multi_line=False)),
    AfterValidator(_reference),
]

# The start of an ISO 8601 / RFC 3339 date and time: a JSON number, or a string of digits, is
# never read as a Unix time.
_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ]|$)")


def _iso_8601_only(value: object) -> object:
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATETIME.match(value)):
        return value
    raise PydanticCustomError(
        "invalid_datetime",
        "must be an ISO 8601 date and time with a time zone offset, e.g. 2026-11-23T10:15:00Z",
    )


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError(
            "naive_datetime", "must include a time zone offset, e.g. 2026-11-23T10:15:00Z"
        )
    return value.astimezone(UTC)


AwareDatetime = Annotated[datetime, BeforeValidator(_iso_8601_only), AfterValidator(_aware_utc)]


def _phone_number(value: str) -> str:
    try:
        parsed = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise PydanticCustomError(
            "invalid_phone_number",
            "must be a UK number in use, or an international number starting with + or 00",
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


PhoneNumber = Annotated[
    str,
    # As people type them: spaces, brackets, dashes, +44, 0044, "+44 (0)..."; stored as E.164.
    Field(min_length=1, max_length=40, examples=["07911 123456", "+44 (0)20 7946 0958"]),
    *_SingleLine,
    AfterValidator(_phone_number),
]


def format_phone_for_reading(e164: str) -> str:
    """E.164 to the way people read it: national format for UK numbers, international otherwise."""
    parsed = phonenumbers.parse(e164, None)
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == 44
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, fmt)


def one_of(choices: type[StrEnum], code: str) -> AfterValidator:
    """A validator that takes one of `choices`' values, refused with its own `code` (e.g.
    `unknown_status`) rather than pydantic's generic `enum`."""
    values = [c.value for c in choices]

    def _check(value: str | None) -> str | None:
        if value is not None and value not in values:
            raise PydanticCustomError(
                code, "must be one of: {choices}", {"choices": ", ".join(values)}
            )
        return value

    return AfterValidator(_check)


def enum_schema(choices: type[StrEnum]) -> Any:
    """The choices for the document, where `one_of` checks them."""
    return {"enum": [c.value for c in choices]}
