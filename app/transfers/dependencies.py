"""The request-scoped transfer context, shared by the API endpoints and the adviser pages."""

from typing import Annotated

from fastapi import Depends, Request

from app.transfers import service


async def _context(request: Request) -> service.TransferContext:
    # async and reading app.state itself (what ClockDep, Routes and SettingsDep give), so that
    # FastAPI neither hops to its thread pool nor solves three more dependencies per request.
    state = request.app.state
    return service.TransferContext(
        state.routes,
        state.clock.now(),
        state.settings.clock_skew_seconds,
    )


Context = Annotated[service.TransferContext, Depends(_context)]
