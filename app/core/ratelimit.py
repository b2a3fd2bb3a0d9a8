"""The per-key rate limit: a sliding window per API key (two counters, O(1) per key),
in the process or in Redis.

In the process (the default) each worker counts on its own, so with N workers or replicas a
key gets N times the limit; `rate_limit_redis_url` makes every process count in one place.
"""

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from app.core.errors import DomainError
from app.core.settings import Settings


class RateLimited(DomainError):
    status = 429
    title = "Too many requests"


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.item: RateLimitItem = parse(settings.rate_limit)
        if settings.rate_limit_redis_url:
            url = settings.rate_limit_redis_url
            # limits names its asyncio storages async+redis://, async+rediss://
            storage = storage_from_string(url if url.startswith("async+") else f"async+{url}")
        else:
            storage = storage_from_string("async+memory://")
        assert isinstance(storage, Storage)
        self.storage = storage
        self.limiter = SlidingWindowCounterRateLimiter(storage)

    async def hit(self, key: str) -> None:
        """Count one request for `key`; raise RateLimited (429, Retry-After) when over."""
        if await self.limiter.hit(self.item, "api-key", key):
            return
        stats = await self.limiter.get_window_stats(self.item, "api-key", key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise RateLimited(
            "rate_limited",
            f"This API key has made more than {self.item} requests; try again in {retry_after} s.",
            headers={"Retry-After": str(retry_after)},
        )
