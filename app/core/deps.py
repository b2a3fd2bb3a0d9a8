"""Request-scoped dependencies: the database session, the clock and the settings (the route
table and the request context are the protocol's: protocol.deps)."""

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.clock import Clock
from app.core.database import get_session
from app.core.settings import Settings

# async, so that FastAPI calls them inline instead of in its thread pool (a thread hop each).


async def _clock(request: Request) -> Clock:
    return request.app.state.clock  # type: ignore[no-any-return]


async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


Session = Annotated[AsyncSession, Depends(get_session)]
ClockDep = Annotated[Clock, Depends(_clock)]
SettingsDep = Annotated[Settings, Depends(_settings)]
