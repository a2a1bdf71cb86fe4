"""The fleet-wide upstream budget, on a real Redis, from several threads at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from osutrack.settings import RateLimit
from worker.upstream.errors import UpstreamRateLimited
from worker.upstream.limiter import (
    INTERACTIVE,
    REFRESH,
    WAITERS_KEY,
    UpstreamLimiter,
)

Build = Callable[..., UpstreamLimiter]


@pytest.fixture
def build(redis_client: redis.Redis) -> Build:
    def make(rate: str = "10/second", share: float = 0.5, wait: float = 10.0) -> UpstreamLimiter:
        return UpstreamLimiter(
            redis_client, RateLimit.parse(rate), refresh_share=share, max_wait_seconds=wait
        )

    return make


def _most_in_any_window(times_ms: list[int], period_ms: int) -> int:
    ordered = sorted(times_ms)
    most, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= period_ms:
            start += 1
        most = max(most, end - start + 1)
    return most


def test_never_more_than_the_limit_in_any_window_across_threads(build: Build) -> None:
    limiter = build("10/second")
    sent: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(8):
            stamp = limiter.acquire(INTERACTIVE).sent()
            assert stamp is not None
            with lock:
                sent.append(stamp)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(sent) == 32
    # Exactly the limit: never more, and a backlog fills every window (bench/README.md
    # measures the achieved rate).
    assert _most_in_any_window(sent, 1000) == 10


def test_every_window_of_a_compound_limit_holds(build: Build) -> None:
    limiter = build("6/second;9/2 seconds")
    sent = [limiter.acquire().sent() or 0 for _ in range(12)]
    assert _most_in_any_window(sent, 1000) <= 6
    assert _most_in_any_window(sent, 2000) <= 9


def test_refresh_gets_only_its_share(build: Build) -> None:
    limiter = build("10/second", share=0.5, wait=0.3)
    for _ in range(5):
        limiter.acquire(REFRESH)
    with pytest.raises(UpstreamRateLimited):
        limiter.acquire(REFRESH)
    # What the refresh left is still there for interactive requests.
    for _ in range(5):
        limiter.acquire(INTERACTIVE)


def test_refresh_yields_to_a_waiting_interactive_request(
    build: Build, redis_client: redis.Redis
) -> None:
    limiter = build("10/second", wait=0.5)
    redis_client.zadd(WAITERS_KEY, {"someone": time.time() * 1000})
    with pytest.raises(UpstreamRateLimited):
        limiter.acquire(REFRESH)
    redis_client.delete(WAITERS_KEY)
    assert limiter.acquire(REFRESH).sent() is not None


def test_a_pause_holds_every_request_until_it_ends(build: Build) -> None:
    limiter = build("100/second")
    # Read before the pause is set: the pause ends no earlier than this plus its length
    # (Redis and this process share a clock here; Redis' stamps are whole milliseconds).
    earliest_end_ms = time.time() * 1000 + 600
    limiter.pause_all(0.6)
    other = build("100/second")  # another process sharing the same Redis
    stamp = other.acquire().sent()
    assert stamp is not None
    assert stamp >= earliest_end_ms - 1


def test_a_long_pause_fails_fast_with_its_retry_after(build: Build) -> None:
    limiter = build("100/second", wait=1.0)
    limiter.pause_all(120)
    with pytest.raises(UpstreamRateLimited) as refused:
        limiter.acquire()
    assert refused.value.retry_after is not None
    assert refused.value.retry_after >= 100


def test_fails_closed_without_redis() -> None:
    # One attempt per command: redis-py's default retries only repeat the refusal, for
    # about five seconds a command.
    unreachable = redis.Redis(
        host="127.0.0.1", port=9, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    limiter = UpstreamLimiter(
        unreachable, RateLimit.parse("10/second"), refresh_share=0.5, max_wait_seconds=1
    )
    with pytest.raises(redis.ConnectionError):
        limiter.acquire()


def test_off_takes_no_slot_and_touches_no_window(build: Build, redis_client: redis.Redis) -> None:
    limiter = build("off")
    assert limiter.acquire().sent() is None
    assert list(redis_client.scan_iter("osutrack:osu:budget:*")) == []


def test_an_interactive_jobs_next_request_keeps_its_place(build: Build) -> None:
    # Right after an interactive request took its slot, the refresh holds back for a moment:
    # the same job's next request (best scores, just after the user) must not find its
    # slot taken. Then the refresh goes on.
    interactive = build("10/second", wait=5.0)
    refresh = build("10/second", wait=0.1)
    interactive.acquire(INTERACTIVE)
    with pytest.raises(UpstreamRateLimited):
        refresh.acquire(REFRESH)
    time.sleep(0.4)
    assert refresh.acquire(REFRESH).sent() is not None
