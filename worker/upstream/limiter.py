"""One upstream request budget shared by every worker process, kept in Redis.

Two kinds of traffic share it. Interactive updates (POST /update) come first: a refresh
request takes a slot only when no interactive request is waiting, and only while the
refresh has used less than its share of the budget (REFRESH_BUDGET_SHARE). A 429 from osu!
pauses every process until its Retry-After has passed.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import redis
from limits import RateLimitItem, parse_many
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from osutrack import metrics
from worker.upstream.errors import UpstreamRateLimited

INTERACTIVE = "interactive"
REFRESH = "refresh"

LIMITER_NAMESPACE = "osutrack:osu"
COOLDOWN_KEY = "osutrack:osu:cooldown"
WAITERS_KEY = "osutrack:osu:interactive_waiters"
# A waiter re-registers on every poll; one that stopped (its process died) stops counting
# after this long, so a crash can never starve the refresh for good.
WAITER_STALE_SECONDS = 5.0
# Longest single sleep, so a waiter notices a cooldown ending or a slot freeing promptly.
MAX_POLL_SECONDS = 0.25


_priority: ContextVar[str] = ContextVar("upstream_priority", default=INTERACTIVE)


@contextmanager
def upstream_priority(priority: str) -> Iterator[None]:
    """Make upstream requests in this block count as `priority` (INTERACTIVE or REFRESH)."""
    token = _priority.set(priority)
    try:
        yield
    finally:
        _priority.reset(token)


def current_priority() -> str:
    """The priority of upstream requests made here (INTERACTIVE unless a task says so)."""
    return _priority.get()


def share_of(item: RateLimitItem, share: float) -> RateLimitItem:
    """The same window with `share` of the amount (at least 1 request)."""
    return type(item)(max(1, int(item.amount * share)), item.multiples, item.namespace)


class UpstreamLimiter:
    """Blocks until the fleet-wide budget (e.g. "60/minute;2/second") has a free slot.

    Uses `limits`' moving window over Redis: exact (never more than the limit in any
    window, no burst at window edges) and one count for every process that points at the
    same Redis. It fails closed: if Redis cannot be reached the error propagates and no
    request is sent to osu!.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        redis_url: str,
        rate_limit: str,
        *,
        refresh_share: float,
        max_wait_seconds: float,
    ) -> None:
        self._redis = redis_client
        self._items: list[RateLimitItem] = [] if rate_limit == "off" else parse_many(rate_limit)
        self._refresh_items = [share_of(item, refresh_share) for item in self._items]
        self._refresh_allowed = refresh_share > 0
        self._max_wait = max_wait_seconds
        self._limiter = (
            MovingWindowRateLimiter(RedisStorage(redis_url, key_prefix="osutrack:limits"))
            if self._items
            else None
        )

    def pause_all(self, seconds: float) -> None:
        """Stop every process from calling osu! for `seconds` (after a 429)."""
        until_ms = int((time.time() + seconds) * 1000)
        current: str | None = self._redis.get(COOLDOWN_KEY)  # type: ignore[assignment]
        if current is None or int(current) < until_ms:
            self._redis.set(COOLDOWN_KEY, until_ms, px=max(int(seconds * 1000), 1))

    def cooldown_remaining(self) -> float:
        """Seconds until the fleet-wide pause ends (0 when there is none)."""
        raw: str | None = self._redis.get(COOLDOWN_KEY)  # type: ignore[assignment]
        if raw is None:
            return 0.0
        return max(int(raw) / 1000 - time.time(), 0.0)

    def acquire(self, priority: str = INTERACTIVE) -> float:
        """Take one slot for a request of `priority`, waiting as needed; return seconds waited.

        Raises `UpstreamRateLimited` when no slot frees up within the configured wait (or
        the pause lasts longer than that), and `redis.RedisError` when the budget cannot
        be checked.
        """
        started = time.monotonic()
        deadline = started + self._max_wait
        token = uuid.uuid4().hex
        waited = False
        try:
            while True:
                wait = self.cooldown_remaining()
                if wait == 0.0:
                    if priority == INTERACTIVE:
                        self._register_waiter(token)
                    if self._try_take(priority):
                        break
                    wait = self._seconds_to_next_slot(priority)
                waited = True
                if time.monotonic() + wait > deadline:
                    metrics.record_limiter_wait(
                        self._redis, time.monotonic() - started, refused=True
                    )
                    raise UpstreamRateLimited(
                        "the osu! API request budget is exhausted; try again later",
                        retry_after=max(1, round(wait)),
                    )
                time.sleep(min(wait, MAX_POLL_SECONDS) + random.uniform(0.0, 0.01))
        finally:
            if priority == INTERACTIVE:
                self._redis.zrem(WAITERS_KEY, token)
        elapsed = time.monotonic() - started
        if waited:
            metrics.record_limiter_wait(self._redis, elapsed, refused=False)
        return elapsed

    def _register_waiter(self, token: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(WAITERS_KEY, {token: time.time()})
        pipe.expire(WAITERS_KEY, int(WAITER_STALE_SECONDS * 4))
        pipe.execute()

    def _interactive_waiting(self) -> bool:
        fresh_since = time.time() - WAITER_STALE_SECONDS
        waiting: int = self._redis.zcount(WAITERS_KEY, fresh_since, "+inf")  # type: ignore[assignment]
        return waiting > 0

    def _try_take(self, priority: str) -> bool:
        if self._limiter is None:
            return True
        if priority == REFRESH:
            if not self._refresh_allowed or self._interactive_waiting():
                return False
            # Check the refresh share first without taking it, so a refused refresh does
            # not spend a slot of the shared budget.
            if not all(
                self._limiter.test(item, LIMITER_NAMESPACE, REFRESH) for item in self._refresh_items
            ):
                return False
        # Items are taken one at a time: a slot taken from a wider window before a
        # narrower one refuses is wasted (under-spent), never overspent.
        if not all(self._limiter.hit(item, LIMITER_NAMESPACE) for item in self._items):
            return False
        if priority == REFRESH:
            for item in self._refresh_items:
                self._limiter.hit(item, LIMITER_NAMESPACE, REFRESH)
        return True

    def _seconds_to_next_slot(self, priority: str) -> float:
        if self._limiter is None:
            return 0.0
        now = time.time()
        waits = [0.0]
        windows: list[tuple[RateLimitItem, tuple[str, ...]]] = [
            (item, (LIMITER_NAMESPACE,)) for item in self._items
        ]
        if priority == REFRESH:
            windows += [(item, (LIMITER_NAMESPACE, REFRESH)) for item in self._refresh_items]
        for item, identifiers in windows:
            stats = self._limiter.get_window_stats(item, *identifiers)
            if stats.remaining <= 0:
                waits.append(max(stats.reset_time - now, 0.0))
        return max(waits) or 0.01
