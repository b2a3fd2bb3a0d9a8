"""Request-scoped dependencies of the protocol: the route table and the request context."""

from typing import Annotated

from fastapi import Depends, Request

from app.protocol.context import RequestContext
from app.protocol.routes import RouteTable

# async and reading app.state itself, so that FastAPI neither hops to its thread pool nor
# solves more dependencies per request.


async def _routes(request: Request) -> RouteTable:
    return request.app.state.routes  # type: ignore[no-any-return]


async def _context(request: Request) -> RequestContext:
    state = request.app.state
    return RequestContext.build(state.routes, state.clock, state.settings)


Routes = Annotated[RouteTable, Depends(_routes)]
Context = Annotated[RequestContext, Depends(_context)]
