"""Field types shared by request models. Each failure has a stable error code."""

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, ConfigDict, Field
from pydantic import BaseModel as _BaseModel
from pydantic_core import PydanticCustomError


class RequestModel(_BaseModel):
    """Request bodies refuse fields they do not know."""

    model_config = ConfigDict(extra="forbid")


class ResponseModel(_BaseModel):
    model_config = ConfigDict(from_attributes=True)


def _has_forbidden_character(value: str, *, allow_newlines: bool) -> bool:
    if "=?" in value:  # an RFC 2047 encoded-word could be decoded into something else by a reader
        return True
    for ch in value:
        if allow_newlines and ch == "\n":
            continue
        # Cc: C0/C1 controls incl. CR, LF, TAB; Zl/Zp: U+2028/U+2029; Cs: lone surrogates.
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs"):
            return True
    return False


def _clean(value: str, *, multi_line: bool) -> str:
    if multi_line:
        value = value.replace("\r\n", "\n")
    if _has_forbidden_character(value, allow_newlines=multi_line):
        allowed = " (other than line breaks)" if multi_line else ", line breaks"
        raise PydanticCustomError(
            "invalid_characters", f"must not contain control characters{allowed} or '=?'"
        )
    if not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value.strip()


def _single_line(value: str) -> str:
    return _clean(value, multi_line=False)


def _multi_line(value: str) -> str:
    return _clean(value, multi_line=True)


CallerName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_single_line)]
ProviderName = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_single_line)]
ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_single_line)]
LongText = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(_multi_line)]

_REFERENCE = re.compile(r"[A-Za-z0-9/-]{1,32}")


def _reference(value: str) -> str:
    if not _REFERENCE.fullmatch(value):
        raise PydanticCustomError("invalid_reference", "must be 1-32 letters, digits, '-' or '/'")
    return value


Reference = Annotated[str, Field(examples=["CAS-123/45"]), AfterValidator(_reference)]


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise PydanticCustomError(
            "naive_datetime", "must include a time zone offset, e.g. 2026-11-23T10:15:00Z"
        )
    return value.astimezone(UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_aware_utc)]


def _phone_number(value: str) -> str:
    try:
        parsed = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise PydanticCustomError(
            "invalid_phone_number",
            "must be a valid UK number, or an international number starting with +",
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


PhoneNumber = Annotated[
    str,
    Field(min_length=1, max_length=40, examples=["07911 123456"]),
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
