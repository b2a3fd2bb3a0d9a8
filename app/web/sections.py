"""The sections of the web pages, each with the lowest role that may use it."""

from dataclasses import dataclass

from app.core.auth import Principal, Role


@dataclass(frozen=True)
class Section:
    title: str
    path: str
    role: Role


# Adviser pages add a Section with Role.agent here; sign-in then admits agents' keys too.
SECTIONS: list[Section] = [
    Section("Monthly reports", "/reports", Role.team_leader),
]


def visible_to(principal: Principal) -> list[Section]:
    return [s for s in SECTIONS if principal.can(s.role)]
