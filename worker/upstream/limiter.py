"""One upstream request budget shared by every worker process, kept in Redis.

Two kinds of traffic share it. Interactive updates (POST /update) come first: a refresh
request takes a slot only when no interactive request is waiting, and only while the
refresh has used less than its share of the budget (REFRESH_BUDGET_SHARE). A 429 from osu!
pauses every process until its Retry-After has passed.

The budget is a moving window per limit ("60/minute;2/second" is two windows) kept as a
sorted set of slot times, checked and taken by one Lua script on Redis' own clock: exact
(never more than the limit in any window of its period), atomic across all windows, and
immune to clock skew between worker machines. A slot is stamped again just before its
request is sent (`Slot.sent`), so a request delayed after taking its slot (a Redis round
trip, a paused process) still counts from when osu! actually sees it.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import redis

from osutrack import metrics
from osutrack.budget import (
    COOLDOWN_KEY,
    WAITER_STALE_SECONDS,
    WAITERS_KEY,
    RateWindow,
    windows_of,
)
from osutrack.settings import RateLimit
from worker.upstream.errors import BudgetExhausted

INTERACTIVE = "interactive"
REFRESH = "refresh"

# An interactive request's mark stays this long after it took its slot, so the refresh
# cannot take the slot its job's next request (best scores, right after the user) needs.
INTERACTIVE_LINGER_SECONDS = 0.3
# Longest single sleep, so a waiter notices a cooldown ending or a slot freeing promptly.
MAX_POLL_SECONDS = 0.25

# KEYS: the window keys (all the budget's, then the refresh share's if any), then the
# waiters set. ARGV: slot id, number of budget windows, then per window: limit, period ms;
# then whether to defer to waiting interactive requests, and the waiter staleness in ms.
# Returns 0 when the slot was taken, else the milliseconds until one may free up.
_TAKE_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local windows = #KEYS - 1
local defer = ARGV[2 + windows * 2 + 1] == '1'
if defer then
  local fresh_since = now - tonumber(ARGV[2 + windows * 2 + 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[#KEYS], '-inf', fresh_since)
  if redis.call('ZCARD', KEYS[#KEYS]) > 0 then
    return 50
  end
end
local wait = 0
for i = 1, windows do
  local limit = tonumber(ARGV[2 + (i - 1) * 2 + 1])
  local period = tonumber(ARGV[2 + (i - 1) * 2 + 2])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - period)
  if redis.call('ZCARD', KEYS[i]) >= limit then
    local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
    local free_in = tonumber(oldest[2]) + period - now + 1
    if free_in > wait then wait = free_in end
  end
end
if wait > 0 then return wait end
for i = 1, windows do
  local period = tonumber(ARGV[2 + (i - 1) * 2 + 2])
  redis.call('ZADD', KEYS[i], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[i], period * 2)
end
return 0
"""

# Move a taken slot to now (Redis' clock) in every window that holds it.
_RESTAMP_SLOT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], 'XX', now, ARGV[1])
end
return now
"""

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


@dataclass(frozen=True)
class Slot:
    """A taken slot of the budget; call `sent()` right before its request goes out."""

    limiter: UpstreamLimiter
    slot_id: str
    keys: tuple[str, ...]

    def sent(self) -> int | None:
        """Stamp the slot with the moment its request is sent; return that moment in ms
        on Redis' clock (None when there is no limit)."""
        return self.limiter.restamp(self) if self.keys else None


class UpstreamLimiter:
    """Blocks until the fleet-wide budget has a free slot; fails closed.

    If Redis cannot be reached the error propagates and no request is sent to osu!.
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        rate_limit: RateLimit,
        *,
        refresh_share: float,
        max_wait_seconds: float,
    ) -> None:
        self._redis = redis_client
        self._budget = windows_of(rate_limit, "all")
        self._refresh = windows_of(rate_limit, REFRESH, refresh_share)
        self._refresh_allowed = refresh_share > 0
        self._max_wait = max_wait_seconds
        self._take = redis_client.register_script(_TAKE_SLOT)
        self._restamp = redis_client.register_script(_RESTAMP_SLOT)

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

    def acquire(self, priority: str = INTERACTIVE) -> Slot:
        """Take one slot for a request of `priority`, waiting as needed.

        Raises `BudgetExhausted` when no slot frees up within the configured wait (or
        the pause lasts longer than that), and `redis.RedisError` when the budget cannot
        be checked.
        """
        started = time.monotonic()
        deadline = started + self._max_wait
        slot_id = uuid.uuid4().hex
        windows = self._budget + (self._refresh if priority == REFRESH else [])
        # A waiter mark only makes the refresh defer to interactive requests for a budget
        # slot; with no budget (limit off) there is no slot to defer for, so the two Redis
        # round trips of marking are skipped.
        marks_waiter = priority == INTERACTIVE and bool(self._budget)
        waited = False
        taken = False
        try:
            while True:
                wait = self.cooldown_remaining()
                if wait == 0.0:
                    if priority == REFRESH and not self._refresh_allowed:
                        wait = self._max_wait + 1
                    else:
                        if marks_waiter:
                            self._register_waiter(slot_id)
                        wait = self._try_take(slot_id, windows, defer=priority == REFRESH)
                        if wait == 0.0:
                            taken = True
                            break
                waited = True
                if time.monotonic() + min(wait, self._max_wait + 1) > deadline:
                    metrics.record_limiter_wait(
                        self._redis, time.monotonic() - started, refused=True
                    )
                    raise BudgetExhausted(
                        "the osu! API request budget is exhausted; try again later",
                        retry_after=max(1, round(wait)),
                    )
                time.sleep(min(wait, MAX_POLL_SECONDS) + random.uniform(0.0, 0.005))
        finally:
            if marks_waiter:
                self._release_waiter(slot_id, linger=taken)
        elapsed = time.monotonic() - started
        if waited:
            metrics.record_limiter_wait(self._redis, elapsed, refused=False)
        return Slot(self, slot_id, tuple(window.key for window in windows))

    def restamp(self, slot: Slot) -> int:
        """Move `slot` to now in its windows (see `Slot.sent`); return now in ms."""
        return int(self._restamp(keys=list(slot.keys), args=[slot.slot_id]))

    def _release_waiter(self, slot_id: str, *, linger: bool) -> None:
        if not linger:
            self._redis.zrem(WAITERS_KEY, slot_id)
            return
        # Age the mark so it goes stale INTERACTIVE_LINGER_SECONDS from now.
        aged = time.time() - (WAITER_STALE_SECONDS - INTERACTIVE_LINGER_SECONDS)
        self._redis.zadd(WAITERS_KEY, {slot_id: aged * 1000})

    def _register_waiter(self, slot_id: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zadd(WAITERS_KEY, {slot_id: time.time() * 1000})
        pipe.pexpire(WAITERS_KEY, int(WAITER_STALE_SECONDS * 4000))
        pipe.execute()

    def _try_take(self, slot_id: str, windows: list[RateWindow], *, defer: bool) -> float:
        """0.0 if the slot was taken, else seconds until it may be worth trying again."""
        if not windows:
            return 0.0
        args: list[str | int] = [slot_id, len(windows)]
        for window in windows:
            args += [window.limit, window.period_ms]
        args += ["1" if defer else "0", int(WAITER_STALE_SECONDS * 1000)]
        keys = [window.key for window in windows] + [WAITERS_KEY]
        wait_ms = int(self._take(keys=keys, args=args))
        return wait_ms / 1000
