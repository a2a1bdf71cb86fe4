"""One upstream request budget shared by every worker process, kept in Redis."""

from __future__ import annotations

import random
import time

from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from worker.upstream.errors import UpstreamRateLimited

LIMITER_NAMESPACE = "osutrack:osu"


class UpstreamLimiter:
    """Blocks until the fleet-wide budget (e.g. "60/minute;2/second") has a free slot.

    Uses `limits`' moving window over Redis: exact (no burst at window edges) and the same
    counters for every process that points at the same Redis. It fails closed: if Redis
    cannot be reached the error propagates and no request is sent to osu!.
    """

    def __init__(self, redis_url: str, rate_limit: str, max_wait_seconds: float) -> None:
        self._items: list[RateLimitItem] = [] if rate_limit == "off" else parse_many(rate_limit)
        self._max_wait = max_wait_seconds
        self._limiter = (
            MovingWindowRateLimiter(RedisStorage(redis_url, key_prefix="osutrack:limits"))
            if self._items
            else None
        )

    def acquire(self) -> None:
        """Take one slot of every configured limit, waiting as needed.

        Raises `UpstreamRateLimited` when no slot frees up within the configured wait, and
        `redis.RedisError` when the budget cannot be checked.
        """
        if self._limiter is None:
            return
        deadline = time.monotonic() + self._max_wait
        while True:
            # Take the items one at a time: a slot taken from a wider window before a
            # narrower one refuses is wasted, never overspent.
            if all(self._limiter.hit(item, LIMITER_NAMESPACE) for item in self._items):
                return
            wait = self._seconds_to_next_slot()
            if time.monotonic() + wait > deadline:
                raise UpstreamRateLimited(
                    "the osu! API request budget is exhausted; try again later",
                    retry_after=max(1, round(wait)),
                )
            time.sleep(wait)

    def _seconds_to_next_slot(self) -> float:
        assert self._limiter is not None
        now = time.time()
        waits = []
        for item in self._items:
            stats = self._limiter.get_window_stats(item, LIMITER_NAMESPACE)
            if stats.remaining <= 0:
                waits.append(max(stats.reset_time - now, 0.0))
        # A little jitter so waiting processes do not all retry in the same millisecond.
        return min(max(waits, default=0.0), 2.0) + random.uniform(0.0, 0.02)
