from fastapi import APIRouter

from app.core.api_route import SessionAPIRoute
from app.core.auth import AnyKey
from app.protocol.deps import Routes
from app.protocol.schemas import RouteTableRead

router = APIRouter(prefix="/v1/routes", tags=["protocol"], route_class=SessionAPIRoute)


@router.get("", operation_id="list_routes")
async def list_routes(_: AnyKey, routes: Routes) -> RouteTableRead:
    """The protocol's table: bodies (with opening hours), numbers to dial, IVR options,
    thresholds, mailboxes and call back targets."""
    return RouteTableRead.from_table(routes)
