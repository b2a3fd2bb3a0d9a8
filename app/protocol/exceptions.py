from app.core.errors import Unprocessable
from app.protocol.routes import Route


def no_route(from_org: str, to_org: str) -> Unprocessable:
    """Transfers, signposts and feedback all need a route between the two bodies."""
    return Unprocessable(
        "no_route", f"There is no route from '{from_org}' to '{to_org}' in the protocol."
    )


def contact_reason_problem(route: Route, reason: str | None) -> Unprocessable | None:
    """A transfer's or signpost's `contact_reason` must be one of its route's, or none."""
    if reason is None or reason in route.contact_reasons:
        return None
    choices = ", ".join(route.contact_reasons) or "none (leave it out)"
    return Unprocessable(
        "unknown_contact_reason",
        f"Contact reason for '{route.to_org}' must be one of: {choices}.",
        extra={"field": "contact_reason"},
    )
