"""The report's contacts by contact reason: each direction's ended transfers and signposts,
by the reason the adviser chose from the receiving body's list (or none).

They are counted by the same statement as the contact figures (service.count_contacts groups
by `contact_reason` too), so a direction's reasons add up to its total contacts.
"""

from collections import Counter

from app.protocol.routes import RouteTable
from app.reports.schemas import ReasonFigures

Direction = tuple[str, str]
NO_REASON = "No reason given"


def reason_label(routes: RouteTable, direction: Direction, code: str | None) -> str:
    """The route table's words for a reason; a reason since removed from the table is named
    from its code in plain words, never shown as the code."""
    if code is None:
        return NO_REASON
    route = routes.route(*direction)
    label = route.contact_reason_label(code) if route else None
    return label or code.replace("_", " ").capitalize()


def reason_figures(
    routes: RouteTable,
    direction: Direction,
    this: Counter[str | None],
    before: Counter[str | None],
) -> list[ReasonFigures]:
    """Every reason of the route's list in its order (0 where none), then any other reason
    recorded, then the contacts with no reason given."""
    route = routes.route(*direction)
    listed: list[str | None] = list(route.contact_reasons) if route else []
    seen = {code for code in (*this, *before) if code is not None}
    codes = listed + sorted(seen - set(listed)) + [None]
    return [
        ReasonFigures(
            contact_reason=code,
            label=reason_label(routes, direction, code),
            this_month=this[code],
            previous_month=before[code],
        )
        for code in codes
    ]
