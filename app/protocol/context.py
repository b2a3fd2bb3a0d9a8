"""RequestContext: what a service's rules need besides the records and the caller."""

from dataclasses import dataclass
from datetime import datetime

from app.core.clock import Clock
from app.core.settings import Settings
from app.protocol.routes import RouteTable


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The route table, the request's "now" (read once from the clock) and the clock skew
    allowed for times the caller sends. The API's endpoints and the pages get it from one
    dependency (`protocol.deps.Context`); the CLI builds one with `build`."""

    routes: RouteTable
    now: datetime
    skew_seconds: int

    @classmethod
    def build(cls, routes: RouteTable, clock: Clock, settings: Settings) -> "RequestContext":
        return cls(routes, clock.now(), settings.clock_skew_seconds)
