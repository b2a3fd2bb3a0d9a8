"""A job that runs at most once per interval, by the clock it is asked with (e.g. the
housekeeping the outbox worker is handed: it runs each job that is due between its rounds)."""

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta


class PeriodicJob:
    def __init__(
        self, name: str, interval_seconds: float, run: Callable[[datetime], Awaitable[int]]
    ) -> None:
        self.name = name
        self.interval = timedelta(seconds=interval_seconds)
        self._run = run
        self.next_at: datetime | None = None  # None: due at the first asking

    async def run_if_due(self, now: datetime) -> int | None:
        """Run the job if its time has come, and return what it returns (e.g. how many records
        it changed); None when it was not time yet (then it does nothing, not even a query)."""
        if self.next_at is not None and now < self.next_at:
            return None
        self.next_at = now + self.interval
        return await self._run(now)
