"""The protocol's route table: bodies, numbers, thresholds and mailboxes, as data.

Nothing else in the code base hard-codes these values: it asks the table.
"""

import tomllib
from collections.abc import Iterator
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError

DEFAULT_TABLE = Path(__file__).with_name("default_routes.toml")

OrgId = str


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
    provider_label: str = "Service provider"
    signature: str


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
    # Filled from the bodies when the table is built.
    dial_number: str = ""
    callback_mailbox: str = ""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def permission_required(self, sender_reference: str | None) -> bool:
        if self.permission_to_share is PermissionRule.always:
            return True
        return sender_reference is not None

    def ivr_option(self, topic: str | None) -> IvrOption | None:
        return self.ivr_options.get(topic) if topic is not None else None


class RouteTableError(ValueError):
    pass


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
