"""The sliding window script of the inbound limiter, run by `InboundLimiter` on a real Redis.

Budgets per day keep the figures exact: the windows are Redis's UTC days, and a test lasts
milliseconds of one. A window's state is written straight into Redis to stand for requests
made in the previous window.
"""

from __future__ import annotations

import math

import redis

from api_shim.ratelimit import KEY_PREFIX, UPDATE, InboundLimiter, parse_budgets

CLIENT = "198.51.100.7"
DAY_MS = 86_400_000


def _limiter(redis_url: str, limit: str) -> InboundLimiter:
    return InboundLimiter(redis_url, {UPDATE: parse_budgets(limit)})


def _key(label: str, client: str = CLIENT) -> str:
    return f"{KEY_PREFIX}:{UPDATE}:{client}:{label}"


def _now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000


def test_a_fresh_budget_allows_exactly_its_amount(
    redis_url: str, redis_client: redis.Redis
) -> None:
    limiter = _limiter(redis_url, "5/day")
    verdicts = [limiter.hit(UPDATE, CLIENT) for _ in range(7)]
    assert [v.allowed for v in verdicts if v] == [True] * 5 + [False] * 2
    assert [v.remaining for v in verdicts if v] == [4, 3, 2, 1, 0, 0, 0]
    refused = verdicts[-1]
    assert refused is not None
    assert refused.limit == 5
    # Nothing in the previous window: a request fits again once a fifth of today's five
    # has slid out, a fifth of a day after this UTC day ends.
    left_ms = DAY_MS - _now_ms(redis_client) % DAY_MS
    assert abs(refused.reset_seconds - (left_ms + DAY_MS / 5) / 1000) <= 2
    # Refused requests are not counted: the window holds the five taken.
    assert redis_client.hget(_key("5/86400s"), "c") == "5"


def test_the_previous_window_still_counts_by_its_remaining_share(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """10 requests yesterday leave today only the share of them that has slid out."""
    limiter = _limiter(redis_url, "10/day")
    now = _now_ms(redis_client)
    yesterday = now // DAY_MS - 1
    redis_client.hset(_key("10/86400s"), mapping={"w": yesterday, "c": 10, "p": 0})
    left_share = (DAY_MS - now % DAY_MS) / DAY_MS
    expected = math.floor(10 - 10 * left_share)

    verdicts = [limiter.hit(UPDATE, CLIENT) for _ in range(11)]

    # A fixed window would allow all ten again.
    assert sum(1 for v in verdicts if v and v.allowed) == expected
    refused = verdicts[-1]
    assert refused is not None
    assert not refused.allowed
    # One more fits once yesterday's share has faded below the room left.
    wait_ms = (DAY_MS - now % DAY_MS) - (9 - expected) * DAY_MS / 10
    assert abs(refused.reset_seconds - wait_ms / 1000) <= 2


def test_a_refused_request_takes_nothing_from_the_other_budgets(
    redis_url: str, redis_client: redis.Redis
) -> None:
    limiter = _limiter(redis_url, "100/hour;2/day")
    first = limiter.hit(UPDATE, CLIENT)
    assert first is not None
    # The day budget binds: fewest requests left.
    assert (first.allowed, first.limit, first.remaining) == (True, 2, 1)
    limiter.hit(UPDATE, CLIENT)
    refused = limiter.hit(UPDATE, CLIENT)
    assert refused is not None
    assert (refused.allowed, refused.limit, refused.remaining) == (False, 2, 0)
    assert refused.reset_seconds > 3600
    assert redis_client.hget(_key("100/3600s"), "c") == "2"
    assert redis_client.hget(_key("2/86400s"), "c") == "2"


def test_budgets_expire_after_two_windows(redis_url: str, redis_client: redis.Redis) -> None:
    limiter = _limiter(redis_url, "3/minute")
    limiter.hit(UPDATE, CLIENT)
    ttl = int(redis_client.pttl(_key("3/60s")))
    assert 60_000 < ttl <= 120_000


def test_clients_and_ipv6_prefixes_have_their_own_budgets(redis_url: str) -> None:
    limiter = _limiter(redis_url, "1/day")
    for client in ("2001:db8:1:2::1", "203.0.113.1"):
        verdict = limiter.hit(UPDATE, client)
        assert verdict is not None
        assert (verdict.allowed, verdict.remaining) == (True, 0)
    second = limiter.hit(UPDATE, "2001:db8:1:2:ffff::9")
    assert second is not None
    assert not second.allowed
    other = limiter.hit(UPDATE, "2001:db8:1:3::1")
    assert other is not None
    assert other.allowed
