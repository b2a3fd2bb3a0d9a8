"""The sections of the web pages, each with the lowest role that may use it."""

from dataclasses import dataclass

from app.core.auth import Principal, Role


@dataclass(frozen=True)
class Section:
    title: str
    path: str
    role: Role


# A key may sign in when its role can use at least one section; the first it can use is where
# it lands. Advisers (agents) see their own pages; team leaders see theirs and the advisers'.
# Relationship owners (outside the rank) see only the complete reports, and land there; team
# leaders may open those pages too (app/web/complete_reports.py) but have the monthly reports.
SECTIONS: list[Section] = [
    Section("Complete reports", "/complete-reports", Role.relationship_owner),
    Section("Monthly reports", "/reports", Role.team_leader),
    Section("Transfer a caller", "/transfer", Role.agent),
    Section("Misdirection feedback", "/feedback", Role.agent),
    # The receiving body's advisers make the call backs handed to their body.
    Section("Call backs for us", "/callbacks", Role.agent),
    Section("Call backs overview", "/callbacks/overview", Role.team_leader),
    Section("Feedback about us", "/feedback/incoming", Role.agent),
]


def visible_to(principal: Principal) -> list[Section]:
    return [s for s in SECTIONS if principal.can(s.role)]


def current(sections: list[Section], path: str) -> Section | None:
    """The section a page belongs to: the longest section path the page's path starts with
    (`/callbacks/overview` is the overview's, not "Call backs for us")."""
    matching = [s for s in sections if path == s.path or path.startswith(s.path.rstrip("/") + "/")]
    return max(matching, key=lambda s: len(s.path), default=None)
