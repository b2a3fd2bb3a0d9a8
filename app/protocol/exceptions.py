from app.core.errors import Unprocessable


def no_route(from_org: str, to_org: str) -> Unprocessable:
    """Transfers, signposts and feedback all need a route between the two bodies."""
    return Unprocessable(
        "no_route", f"There is no route from '{from_org}' to '{to_org}' in the protocol."
    )
