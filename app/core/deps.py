"""Request-scoped dependencies: the session, the clock and the route table."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.database import get_session
from app.core.settings import Settings
from app.protocol.routes import RouteTable

# async, so that FastAPI calls them inline instead of in its thread pool (a thread hop each).


async def _clock(request: Request) -> Clock:
    return request.app.state.clock  # type: ignore[no-any-return]


async def _routes(request: Request) -> RouteTable:
    return request.app.state.routes  # type: ignore[no-any-return]


async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


Session = Annotated[AsyncSession, Depends(get_session)]
ClockDep = Annotated[Clock, Depends(_clock)]
Routes = Annotated[RouteTable, Depends(_routes)]
SettingsDep = Annotated[Settings, Depends(_settings)]
