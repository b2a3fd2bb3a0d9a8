"""SessionAPIRoute: the FastAPI route class under every router (API and pages).

A FastAPI route class, not a protocol route: it opens the request's database session around
the endpoint, so that a transaction whose connection was found dead runs once more on a
fresh one. An endpoint marked `@hot_path` is tried on the hot path first (core.hot_path). The
API's routers add Idempotency-Key handling on top (idempotency.api_route), the pages their
error pages (web.pages).
"""

from fastapi import Request, Response
from fastapi.routing import APIRoute

from app.core import hot_path
from app.core.database import in_request_session, reconnecting
from app.core.hot_path import Handler

__all__ = ["Handler", "SessionAPIRoute"]


class SessionAPIRoute(APIRoute):
    async def run(self, request: Request, handler: Handler) -> Response:
        """The endpoint's transaction, run again once if its connection was found dead
        before it committed. Subclasses wrap this."""
        return await reconnecting(lambda: in_request_session(request, handler))

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if hot_path.is_hot(self.endpoint):
            handler = hot_path.handler(self, handler)

        async def route_handler(request: Request) -> Response:
            return await self.run(request, handler)

        return route_handler
