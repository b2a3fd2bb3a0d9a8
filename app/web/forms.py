"""Forms on the advisers' pages: the values as typed, and each field's error.

The rules are the API's: a form is turned into the API's request model and handed to the same
service, and whatever either refuses comes back here as the same stable codes, placed next to
the field they are about, each with the plain sentence of `messages.py` (the code itself is
kept only in an attribute, for support). Only the UK times advisers type are read here.
"""

from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.core.errors import DomainError
from app.core.months import LONDON
from app.web.auth import check_csrf
from app.web.messages import say

# Form-level errors (not about one field) are filed under this name.
WHOLE_FORM = ""


@dataclass(frozen=True)
class FieldError:
    code: str
    message: str


@dataclass
class Form:
    """A submitted (or blank) form: its values as typed and its errors by field name."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, FieldError] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    # What the sentences may name besides the field: the other body, the wait in seconds.
    context: dict[str, Any] = field(default_factory=dict)

    def value(self, name: str) -> str:
        return self.values.get(name, "").strip()

    def error(self, name: str, code: str, typed: str | None = None, **context: Any) -> None:
        """File `code` under field `name` (the first error of a field wins), with its sentence."""
        if name not in self.labels:
            name = WHOLE_FORM
        if name in self.errors:
            return
        value = self.value(name) if typed is None else typed
        words = {**self.context, "label": self.labels.get(name), "value": value, **context}
        if code == "invalid_phone_number":
            words.setdefault("where", "" if _international(value) else " in the UK")
        self.errors[name] = FieldError(code, say(code, words))

    def refused(self, exc: ValidationError | DomainError) -> "Form":
        """File what the request model or the service refused under the fields it is about."""
        if isinstance(exc, DomainError):
            self.error(str(exc.extra.get("field", WHOLE_FORM)), exc.code)
            return self
        for problem in exc.errors():
            # "caller.name" is a field of its own; "case_references.0" is one of a list.
            loc = [str(part) for part in problem.get("loc", ())]
            name = ".".join(part for part in loc if not part.isdigit())
            limits = problem.get("ctx") or {}
            limit = limits.get("max_length")
            self.error(
                name, str(problem["type"]), limit=f"{limit:,}" if isinstance(limit, int) else None
            )
        return self

    def problems(self, found: list[DomainError]) -> "Form":
        """File each of a service's problems (all of them, not only the first)."""
        for exc in found:
            self.refused(exc)
        return self

    def kept(self) -> dict[str, Any]:
        """What a refused form keeps for the page it redirects to: the values as typed (not
        the CSRF token) and each field's error, its sentence already written."""
        return {
            "values": {k: v for k, v in self.values.items() if k != "csrf_token"},
            "errors": {name: [e.code, e.message] for name, e in self.errors.items()},
        }

    @classmethod
    def from_kept(cls, kept: dict[str, Any] | None, labels: dict[str, str]) -> "Form | None":
        """The form `kept()` described, or None when nothing was kept."""
        if not kept:
            return None
        values = {str(k): str(v) for k, v in dict(kept.get("values") or {}).items()}
        errors = {
            str(name): FieldError(str(error[0]), str(error[1]))
            for name, error in dict(kept.get("errors") or {}).items()
        }
        return cls(values=values, errors=errors, labels=labels)

    def validate(self, model: type[BaseModel], data: dict[str, Any]) -> Any:
        """`model` built from `data`, or None with the errors filed."""
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            self.refused(exc)
            return None


async def submitted(request: Request, labels: dict[str, str]) -> Form:
    """The posted form, after its CSRF token is checked."""
    data = await request.form()
    values = {k: v for k, v in data.items() if isinstance(v, str)}
    check_csrf(request, values.get("csrf_token"))
    return Form(values=values, labels=labels)


def time_today(form: Form, name: str, now: datetime, error_as: str = "") -> datetime | None:
    """A time of day typed as HH:MM (UK time), on today's date in the UK; None when empty."""
    text = form.value(name)
    if not text:
        return None
    try:
        moment = time.fromisoformat(text)
    except ValueError:
        form.error(error_as or name, "invalid_time")
        return None
    today = now.astimezone(LONDON).date()
    return datetime.combine(today, moment, tzinfo=LONDON)


def date_and_time(form: Form, name: str) -> datetime | None:
    """A date and time typed as YYYY-MM-DDTHH:MM (UK time, as a datetime-local field sends it)."""
    text = form.value(name)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is not None:
        form.error(name, "invalid_datetime")
        return None
    return moment.replace(tzinfo=LONDON)


def _international(number: str) -> bool:
    """Typed with a country code other than the UK's (+44 or 0044)."""
    digits = number.replace(" ", "")
    return digits.startswith(("+", "00")) and not digits.startswith(("+44", "0044"))


PERMISSION_STAMPED = "permission_to_share_at"  # the hidden value the stamp button left
PERMISSION_TYPED = "permission_time"
STAMP_PERMISSION = "permission_now"  # the `action` of the "Permission given now" button


def permission_to_share(form: Form, now: datetime) -> datetime | None:
    """When the caller gave permission to share: stamped now by the button, typed as a time
    today, or stamped by the button on an earlier round of the same form."""
    if form.value("action") == STAMP_PERMISSION:
        form.values[PERMISSION_STAMPED] = now.isoformat()
        form.values[PERMISSION_TYPED] = ""
        return now
    typed = time_today(form, PERMISSION_TYPED, now, error_as=PERMISSION_STAMPED)
    if typed is not None or form.value(PERMISSION_TYPED):
        form.values[PERMISSION_STAMPED] = ""
        return typed
    stamped = form.value(PERMISSION_STAMPED)
    if not stamped:
        return None
    try:
        return datetime.fromisoformat(stamped)
    except ValueError:
        form.values[PERMISSION_STAMPED] = ""
        form.error(PERMISSION_STAMPED, "permission_not_readable")
        return None
