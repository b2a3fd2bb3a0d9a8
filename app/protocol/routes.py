"""The protocol's route table: bodies, numbers, thresholds and mailboxes, as data.

Nothing else in the code base hard-codes these values: it asks the table.
"""

import re
import tomllib
from collections.abc import Iterator
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError, model_validator

from app.core.working_time import OpeningHours, due_at

DEFAULT_TABLE = Path(__file__).with_name("default_routes.toml")

OrgId = str
_REASON_CODE = re.compile(r"[a-z][a-z0-9_]{0,31}")


class PermissionRule(StrEnum):
    always = "always"  # recorded for every transfer
    with_sender_reference = "with_sender_reference"  # recorded when a case reference is created


class ReferenceRule(StrEnum):
    required = "required"
    optional = "optional"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Body(_Frozen):
    id: OrgId
    name: str
    short_name: str
    switchboard: str
    receiving_team: str
    sending_team: str
    reference_label: str
    callback_mailbox: EmailStr
    feedback_mailbox: EmailStr
    # The team leaders' mailbox: the monthly report's reminders go there (due soon, overdue;
    # app.reports.reminders). The agreement names none: unset, it is `feedback_mailbox`.
    report_mailbox: EmailStr
    # Who owns the relationship between the bodies: told when a report version is complete.
    # Optional: unset, the body gets no completion notice.
    relationship_owner_mailbox: EmailStr | None = None
    provider_label: str = "Service provider"
    signature: str
    # When the body's team answers: the working time in which call backs to it are measured.
    opening_hours: OpeningHours
    # Why callers are passed to this body, code -> label (in the file's order): the choices
    # for a transfer's or signpost's `contact_reason` on every route to it.
    contact_reasons: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _report_mailbox_defaults_to_feedback(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("report_mailbox") is None:
            return {**data, "report_mailbox": data.get("feedback_mailbox")}
        return data

    @model_validator(mode="after")
    def _reason_codes(self) -> "Body":
        for code in self.contact_reasons:
            if not _REASON_CODE.fullmatch(code):
                raise ValueError(f"contact reason {code!r}: use a-z, 0-9 and _, up to 32")
        return self


class IvrOption(_Frozen):
    option: int
    label: str


class Route(_Frozen):
    """One direction: what an adviser at `from_org` does to pass a caller to `to_org`."""

    from_org: OrgId = Field(alias="from")
    to_org: OrgId = Field(alias="to")
    wait_threshold_seconds: int = Field(gt=0)
    sender_reference: ReferenceRule
    permission_to_share: PermissionRule
    ivr_options: dict[str, IvrOption] = Field(default_factory=dict)
    # Call back targets, in working hours of the receiving body (`to_org`).
    callback_first_attempt_within: float = Field(default=4, gt=0)
    callback_close_within: float = Field(default=16, gt=0)
    # Unsuccessful attempts to reach the caller before the request closes as unreachable.
    callback_max_attempts: int = Field(default=3, ge=1)
    # Filled from the bodies when the table is built.
    dial_number: str = ""
    callback_mailbox: str = ""
    # The receiving body's, unless the route lists its own.
    contact_reasons: dict[str, str] = Field(default_factory=dict)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _close_not_before_first_attempt(self) -> "Route":
        if self.callback_close_within < self.callback_first_attempt_within:
            raise ValueError("callback_close_within is shorter than callback_first_attempt_within")
        return self

    def permission_required(self, sender_reference: str | None) -> bool:
        if self.permission_to_share is PermissionRule.always:
            return True
        return sender_reference is not None

    def ivr_option(self, topic: str | None) -> IvrOption | None:
        return self.ivr_options.get(topic) if topic is not None else None

    def contact_reason_label(self, code: str | None) -> str | None:
        return self.contact_reasons.get(code) if code is not None else None


class RouteTableError(ValueError):
    pass


class CallbackDue(NamedTuple):
    first_attempt_due_at: datetime
    close_due_at: datetime


class RouteTable:
    def __init__(self, bodies: dict[OrgId, Body], routes: dict[tuple[OrgId, OrgId], Route]):
        self.bodies = bodies
        self.routes = routes

    def body(self, org: OrgId) -> Body | None:
        return self.bodies.get(org)

    def route(self, from_org: OrgId, to_org: OrgId) -> Route | None:
        return self.routes.get((from_org, to_org))

    def __iter__(self) -> Iterator[Route]:
        return iter(self.routes.values())

    def callback_due(self, route: Route, requested_at: datetime) -> CallbackDue:
        """When a call back request made at `requested_at` on `route` is due: its targets
        counted in the receiving body's opening hours."""
        hours = self.bodies[route.to_org].opening_hours
        return CallbackDue(
            due_at(requested_at, route.callback_first_attempt_within, hours),
            due_at(requested_at, route.callback_close_within, hours),
        )


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    bodies = {**base.get("bodies", {}), **extra.get("bodies", {})}
    routes = {(r["from"], r["to"]): r for r in base.get("routes", [])}
    routes.update({(r["from"], r["to"]): r for r in extra.get("routes", [])})
    return {"bodies": bodies, "routes": list(routes.values())}


def build_table(data: dict[str, Any]) -> RouteTable:
    try:
        bodies = {
            org: Body(id=org, **{**fields, "signature": fields.get("signature", "").strip()})
            for org, fields in data.get("bodies", {}).items()
        }
        routes: dict[tuple[OrgId, OrgId], Route] = {}
        for raw in data.get("routes", []):
            route = Route.model_validate(raw)
            for org in (route.from_org, route.to_org):
                if org not in bodies:
                    raise RouteTableError(f"route {route.from_org}->{route.to_org}: unknown {org}")
            if route.from_org == route.to_org:
                raise RouteTableError(f"route {route.from_org}->{route.to_org} goes nowhere")
            receiver = bodies[route.to_org]
            routes[(route.from_org, route.to_org)] = route.model_copy(
                update={
                    "dial_number": receiver.switchboard,
                    "callback_mailbox": receiver.callback_mailbox,
                    "contact_reasons": route.contact_reasons or receiver.contact_reasons,
                }
            )
    except ValidationError as exc:
        raise RouteTableError(str(exc)) from exc
    return RouteTable(bodies, routes)


def load_table(extra_file: Path | None = None) -> RouteTable:
    data = tomllib.loads(DEFAULT_TABLE.read_text(encoding="utf-8"))
    if extra_file is not None:
        data = _merge(data, tomllib.loads(Path(extra_file).read_text(encoding="utf-8")))
    return build_table(data)


@lru_cache
def default_table() -> RouteTable:
    return load_table()
